"""Built-in autoencoder variants, one plugin module each, registered like third-party plugins."""
