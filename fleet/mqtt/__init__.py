"""MQTT for both sides of the fleet: one way to make a client (:mod:`fleet.mqtt.client`: TLS,
credentials, MQTT v5, reconnect delays), one type for a client's TLS files, the reconnect
backoff (:mod:`fleet.mqtt.backoff`) and the console's stream reader (:mod:`fleet.mqtt.stream`).
"""
