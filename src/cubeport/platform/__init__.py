"""Platform services beside the cube store: the rolling cache of remote data, the server secret, news, the
energy and carbon estimate."""
