"""The sea-ice SAR chain: ICEYE deliveries to calibrated, rectified, classified ice charts and drift.

One module a step (delivery validation, calibration, incidence, rectification, land mask, classification,
ice charts, drift) on numpy/dask arrays and files, no HTTP; `chain` runs them in order and `publish` adds
the results to the platform (cube, feature collections, STAC). Facts: ../shared/design/seaice-facts.md.
"""
