from narnas.errors import UserError


class ZeroCostError(UserError):
    """A proxy, a minibatch or a proxy cache the user asked for that cannot be had."""
