"""The imperative shell around the session (no kivy): the runtime pump, previews and printing,
the health loop, maintenance, remote commands, catalog watch, disk guard, sd_notify, the devices
as configured."""
