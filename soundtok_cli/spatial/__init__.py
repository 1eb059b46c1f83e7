"""Sound in 3D: placements, HRTFs, ambisonics, loudspeaker layouts and the renderer.

Conventions (as in AmbiX and SOFA): azimuth in degrees counter-clockwise from the front (left is
+90), elevation in degrees upwards from the horizontal plane, distance in metres from the centre
of the head; Cartesian x to the front, y to the left, z up.

  geometry.py    spherical <-> Cartesian, position checks
  trajectory.py  positions over time (keypoints, slerp between them), CSV trajectories
  phrases.py     `--at` and `--path` text: numbers (az=.. el=.. dist=..) and the word vocabulary
  scene.py       scene files (TOML or JSON): several sources, each with its placement
  sofa.py        reading SOFA (AES69) HRIR files
  hrtf.py        an HRTF set at a sample rate: onset-aligned HRIRs, interpolation between directions
  ambisonics.py  real spherical harmonics (ACN order, SN3D), ambisonic decoders
  layouts.py     loudspeaker layouts (stereo, 5.1, 7.1.4) and VBAP
  dsp.py         fractional delay lines (Doppler, ITD), air absorption
  room.py        rooms: early reflections (image sources) and a reverb tail
  render.py      the renderer: sources with trajectories -> binaural, stereo, ambisonics, speakers
  kind.py        the `spatial` store kind: tokens plus a per-frame position track
  pipeline.py    what the commands call: inputs to sources, sources to stores or audio files
"""
