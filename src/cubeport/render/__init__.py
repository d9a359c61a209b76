"""Map rendering: tile matrix sets, colour maps, the tile renderer and PNG encoding (no HTTP)."""
