"""Platform services beside the cube store: the rolling cache of remote data."""
