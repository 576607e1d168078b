"""The engine's version: recorded by the store's schema, which names the oldest engine it still serves."""

ENGINE_VERSION = "0.2.0"
