"""The drift engine's storage: frozen reference profiles, incremental rollups, column scans.

``profiles`` and ``profile_build`` freeze a reference set's bins; ``rollups`` keeps current data
summed per hour and day on those bins; ``colscan`` and ``rowscan`` read rows column-wise;
``bins`` holds the rollup values, ``pgbinary`` the binary array codecs they travel in.
"""
