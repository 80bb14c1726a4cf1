"""Errors a user can act on: each message says what was wrong and what to do."""


class EdgeConsoleError(Exception):
    """Base of every error the product reports to a person rather than as a traceback."""


class ModelError(EdgeConsoleError):
    """A model file cannot be used."""


class ModelNotFoundError(ModelError):
    pass


class NotAnOnnxModelError(ModelError):
    pass


class UnknownModelLayoutError(ModelError):
    pass


class ProviderError(ModelError):
    pass
