"""OGC API - Processes Part 1: /processes and /jobs (filled in by issue 20)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["processes"])
