"""What the OGC API standards (Features, CQL2, STAC, EDR, Tiles) share, without HTTP: request parameters and
conformance classes."""
