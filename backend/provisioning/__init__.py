"""Device identity: Mosquitto credentials and certificates for machines."""
