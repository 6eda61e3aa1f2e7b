"""The ollama stand-in: a test double of the Ollama server and CLI.

This package is a TEST FIXTURE of the ollama-fleet project, never a product
part.  It needs only the Python standard library (3.9+) because it runs on
bare target hosts.
"""
