"""The built-in sea-ice suite: a watcher's delivery through the chain to the portal, one run a delivery.

Every task calls the Cubeport CLI, so the same suite runs under the built-in runner and, exported with
`cubeport suites export-ecflow seaice DIR`, under ecFlow. The watcher's run sets WATCHER, FILE and SIZE; the
runner sets WORK (the run's folder) and OPS (the operations folder, where published scenes are kept for the
drift of later ones).
"""

SUITE = """\
suite: seaice
title: Sea ice from ICEYE, near real time
variables:
  CUBEPORT: cubeport
limits:
  scenes: 2            # scenes processed at once (each needs a few GB at full size)
nodes:
  - task: fetch        # download (resumed after a broken connection) and check size and checksum
    tries: 3
    timeout: 3600
    command: "%CUBEPORT% watch fetch %WATCHER% %FILE% --size %SIZE% --to %WORK%/delivery"
  - task: validate     # format checks; a bad delivery goes to quarantine and the run aborts here
    trigger: fetch == complete
    command: "%CUBEPORT% seaice validate %WORK%/delivery/%FILE% --quarantine"
  - family: scene
    trigger: validate == complete
    inlimit: scenes
    nodes:
      - task: process  # calibrate, correct incidence, rectify, mask land, classify, chart
        tries: 2
        timeout: 3600
        command: "%CUBEPORT% seaice process %WORK%/delivery/%FILE% --out %WORK%/scenes --no-publish --no-quarantine"
      - task: publish  # the day in the ice cube, STAC, charts in the feature store
        trigger: process == complete
        tries: 2
        command: "%CUBEPORT% seaice publish %WORK%/scenes --archive %OPS%/seaice/scenes"
      - task: drift    # against the latest earlier scene that overlaps
        trigger: publish == complete
        command: "%CUBEPORT% seaice drift-previous %WORK%/scenes --archive %OPS%/seaice/scenes --out %WORK%/drift"
  - task: deliver      # to the delivery targets (e.g. IBNet); failed pushes are retried by the runner
    trigger: scene == complete
    command: "%CUBEPORT% ops deliver %WORK%/scenes %WORK%/drift"
"""
