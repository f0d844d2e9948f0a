"""Signage screens: the Kivy app, the announcer and the web signage page.

``display.state`` (what to show, folded from the hub's MQTT state) and
``display.present`` (the words and numbers a screen draws) import neither
Kivy nor paho, so they are unit-tested and shared by the benchmark.
"""
