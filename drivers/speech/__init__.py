"""Spoken guidance: pyttsx3 + espeak-ng synthesis to files in a process of its own, own playback."""
