"""xcube-compatible expression routes (band maths the viewer's user variables use): filled in by issue 20."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["xcube"])
