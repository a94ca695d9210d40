"""Sub-commands of the project CLI; each module defines ``register(subparsers)``."""
