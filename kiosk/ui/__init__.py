"""The screen: the Kivy app, its screens and widgets, the theme. The only part of the terminal
that imports kivy; it renders the frames the shell hands it and posts what the resident does."""
