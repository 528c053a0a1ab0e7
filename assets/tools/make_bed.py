#!/usr/bin/env python3
"""Synthesise Billcast's background music beds (numpy only) and encode them to AAC.

    bed.m4a         40 s  warm, calm explainer bed: D major, I-V-vi-IV
                          (Dadd9 - A - Bm7 - Gmaj7), 96 BPM, pads + sub + bell arpeggio
    bed_gentle.m4a  30 s  slower and softer, for payment reminders: vi-IV-I-V in C
                          (Am9 - Fmaj7 - Cadd9 - Gsus2), 64 BPM, sparser bells

Every voice is additive synthesis with fixed parameters, and the only random
numbers (the reverb's noise impulse response and the 16-bit dither) come from
fixed seeds, so a given numpy version gives identical WAV samples on every run.
The music is rendered circularly (note tails and reverb wrap around to the
start), so the body loops cleanly; then a 1 s fade-in and a 3 s fade-out are
applied. Output is 44.1 kHz stereo, levelled to -20 dBFS RMS over the whole
file (ffmpeg volumedetect's mean_volume) with a -3 dBFS sample-peak ceiling;
the soft pads have a crest factor of about 13 dB, so the peaks land near -7 dBFS.

The WAV goes to a temporary file and is encoded with the ffmpeg binary from
imageio-ffmpeg (AAC-LC 128 kbit/s, 44.1 kHz, stereo, bit-exact flags so the
.m4a does not embed a timestamp or encoder version string). Run:

    .venv/bin/python assets/tools/make_bed.py            # both beds
    .venv/bin/python assets/tools/make_bed.py --check    # ... then print ffmpeg volumedetect
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parents[1]
OUT = ASSETS / "audio"

SR = 44100
TARGET_RMS_DBFS = -20.0     # a bed that sits under narration
PEAK_CEILING_DBFS = -3.0    # headroom for AAC overshoot and mixing
FADE_IN_S = 1.0
FADE_OUT_S = 3.0


def midi_hz(m: float) -> float:
    return 440.0 * 2.0 ** ((m - 69) / 12)


# --------------------------------------------------------------------------- building blocks

def add_circular(buf: np.ndarray, start: int, sig: np.ndarray) -> None:
    """Add ``sig`` (n,) or (n, 2) into ``buf`` at ``start``, wrapping past the end."""
    n = len(buf)
    idx = (start + np.arange(len(sig))) % n
    np.add.at(buf, idx, sig)


def soft_osc(freq: float, t: np.ndarray, phase: float, tri_mix: float) -> np.ndarray:
    """A sine blended with a band-limited triangle (odd harmonics 1/n^2): soft, round."""
    w = 2 * np.pi * freq * t + phase
    tri = np.zeros_like(t)
    for k, n in enumerate((1, 3, 5, 7)):
        if freq * n > 6000:
            break
        tri += ((-1) ** k) * np.sin(n * w) / (n * n)
    tri *= 8 / np.pi ** 2
    return (1 - tri_mix) * np.sin(w) + tri_mix * tri


def pad_envelope(n_hold: int, attack: int, release: int) -> np.ndarray:
    """Raised-cosine attack, flat hold, raised-cosine release."""
    a = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, attack, endpoint=False))
    h = np.ones(max(0, n_hold - attack))
    r = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, release))
    return np.concatenate([a, h, r])


def pan(sig: np.ndarray, p: float) -> np.ndarray:
    """Equal-power pan, p in [-1 (left), 1 (right)]."""
    ang = (p + 1) * np.pi / 4
    return np.stack([sig * np.cos(ang), sig * np.sin(ang)], axis=1)


def spectral_lowpass(x: np.ndarray, cutoff: float, order: int = 2) -> np.ndarray:
    """Smooth Butterworth-shaped magnitude low-pass, applied circularly via FFT."""
    X = np.fft.rfft(x, axis=0)
    f = np.fft.rfftfreq(len(x), 1 / SR)
    g = 1 / np.sqrt(1 + (f / cutoff) ** (2 * order))
    return np.fft.irfft(X * g[:, None], n=len(x), axis=0)


def spectral_highpass(x: np.ndarray, cutoff: float, order: int = 2) -> np.ndarray:
    X = np.fft.rfft(x, axis=0)
    f = np.fft.rfftfreq(len(x), 1 / SR)
    with np.errstate(divide="ignore"):
        g = 1 / np.sqrt(1 + (cutoff / np.maximum(f, 1e-9)) ** (2 * order))
    return np.fft.irfft(X * g[:, None], n=len(x), axis=0)


def reverb(x: np.ndarray, seconds: float, rt60: float, seed: int, damp_hz: float) -> np.ndarray:
    """Circular convolution with a decaying, low-passed stereo noise tail (100% wet)."""
    n_ir = int(seconds * SR)
    rng = np.random.default_rng(seed)
    t = np.arange(n_ir) / SR
    decay = np.exp(-6.91 * t / rt60)                  # -60 dB at rt60
    onset = np.clip(t / 0.02, 0, 1)                   # 20 ms soft onset (pre-delay feel)
    ir = rng.standard_normal((n_ir, 2)) * (decay * onset)[:, None]
    ir = spectral_lowpass(ir, damp_hz, order=1)
    ir /= np.sqrt(np.sum(ir ** 2, axis=0, keepdims=True))  # unit energy per channel
    n = len(x)
    pad_ir = np.zeros((n, 2))
    pad_ir[: min(n, n_ir)] = ir[:n]
    if n_ir > n:  # wrap (only for very short renders)
        for i in range(n, n_ir, n):
            pad_ir[: min(n, n_ir - i)] += ir[i:i + n]
    X = np.fft.rfft(x, axis=0)
    H = np.fft.rfft(pad_ir, axis=0)
    return np.fft.irfft(X * H, n=n, axis=0)


# --------------------------------------------------------------------------- voices

@dataclass(frozen=True)
class Chord:
    pad: tuple[float, ...]    # MIDI notes of the pad voicing
    root: float               # MIDI note for the sub-bass
    arp: tuple[float | None, ...]  # one MIDI note (or rest) per arpeggio step


@dataclass(frozen=True)
class Bed:
    name: str
    seconds: float
    bpm: float
    beats_per_chord: int
    steps_per_beat: int       # arpeggio resolution
    chords: tuple[Chord, ...]
    pad_attack: float
    pad_release: float
    pad_cutoff: float         # Hz, pad bus low-pass
    tri_mix: float            # 0 = pure sine pads, 1 = triangle
    pad_level: float
    sub_level: float
    bell_level: float
    bell_decay: float         # seconds to -60 dB-ish
    reverb_mix: float
    seed: int


def render_pads(bed: Bed, n: int) -> np.ndarray:
    out = np.zeros((n, 2))
    chord_s = bed.beats_per_chord * 60 / bed.bpm
    total_chords = round(bed.seconds / chord_s)
    attack = int(bed.pad_attack * SR)
    release = int(bed.pad_release * SR)
    hold = int(chord_s * SR)
    env = pad_envelope(hold, attack, release)
    t = np.arange(len(env)) / SR
    detune_cents = (-7.0, 0.0, 6.0)
    pans = (-0.55, 0.0, 0.55)
    for ci in range(total_chords):
        chord = bed.chords[ci % len(bed.chords)]
        # start the attack a little before the bar so the new chord is "there" on the downbeat
        start = int(ci * chord_s * SR) - attack // 2
        for vi, note in enumerate(chord.pad):
            voice = np.zeros((len(env), 2))
            # upper voices quieter: a gentle spectral tilt across the voicing
            gain = 1.0 / (1 + 0.12 * vi)
            for di, (cents, p) in enumerate(zip(detune_cents, pans)):
                f = midi_hz(note + cents / 100)
                phase = 2 * np.pi * ((ci * 7 + vi * 3 + di) * 0.137 % 1)
                # slow amplitude drift per oscillator (0.07-0.2 Hz) keeps the pad alive
                lfo = 1 + 0.12 * np.sin(2 * np.pi * (0.07 + 0.045 * di + 0.02 * vi) * t + phase)
                voice += pan(soft_osc(f, t, phase, bed.tri_mix) * lfo, p)
            add_circular(out, start, voice * (env * gain / 3)[:, None])
    out = spectral_lowpass(out, bed.pad_cutoff, order=2)
    return out * bed.pad_level


def render_sub(bed: Bed, n: int) -> np.ndarray:
    out = np.zeros(n)
    chord_s = bed.beats_per_chord * 60 / bed.bpm
    total_chords = round(bed.seconds / chord_s)
    attack = int(0.35 * SR)
    release = int(0.9 * SR)
    hold = int(chord_s * SR) - int(0.15 * SR)
    env = pad_envelope(hold, attack, release)
    t = np.arange(len(env)) / SR
    for ci in range(total_chords):
        chord = bed.chords[ci % len(bed.chords)]
        f = midi_hz(chord.root)
        # sine + a touch of 2nd harmonic so the root is audible on small speakers
        sig = np.sin(2 * np.pi * f * t) + 0.22 * np.sin(2 * np.pi * 2 * f * t)
        add_circular(out, int(ci * chord_s * SR), sig * env)
    out = out * bed.sub_level
    return np.stack([out, out], axis=1)


def bell_note(freq: float, decay_s: float) -> np.ndarray:
    """A soft mallet/bell: a few sine partials with exponential decays, soft 4 ms attack."""
    n = int(decay_s * 1.2 * SR)
    t = np.arange(n) / SR
    partials = ((1.0, 1.0, 1.0), (2.0, 0.28, 0.55), (3.0, 0.08, 0.35), (4.07, 0.05, 0.25))
    sig = np.zeros(n)
    for ratio, amp, dec in partials:
        if freq * ratio > 9000:
            continue
        sig += amp * np.sin(2 * np.pi * freq * ratio * t) * np.exp(-6.91 * t / (decay_s * dec))
    attack = np.clip(t / 0.004, 0, 1)
    tail = 0.5 + 0.5 * np.cos(np.pi * np.clip((t - decay_s) / (0.2 * decay_s), 0, 1))
    return sig * attack * tail


def render_bells(bed: Bed, n: int) -> np.ndarray:
    out = np.zeros((n, 2))
    chord_s = bed.beats_per_chord * 60 / bed.bpm
    step_s = 60 / bed.bpm / bed.steps_per_beat
    total_chords = round(bed.seconds / chord_s)
    cache: dict[float, np.ndarray] = {}
    for ci in range(total_chords):
        chord = bed.chords[ci % len(bed.chords)]
        for si, note in enumerate(chord.arp):
            if note is None:
                continue
            if note not in cache:
                cache[note] = bell_note(midi_hz(note), bed.bell_decay)
            # gentle accent on the first step, slight alternating pan
            vel = 1.0 if si == 0 else 0.78 - 0.05 * ((si * 5) % 3)
            p = (-0.35, 0.3, -0.15, 0.4)[si % 4]
            start = int((ci * chord_s + si * step_s) * SR)
            add_circular(out, start, pan(cache[note] * vel, p))
    return out * bed.bell_level


def render(bed: Bed) -> np.ndarray:
    n = int(round(bed.seconds * SR))
    pads = render_pads(bed, n)
    sub = render_sub(bed, n)
    bells = render_bells(bed, n)
    dry = pads + sub + bells
    # Reverb send: mostly pads and bells, not the sub (keeps the low end clean).
    wet = reverb(pads * 0.6 + bells, seconds=3.0, rt60=2.4, seed=bed.seed, damp_hz=3500)
    mix = dry + wet * bed.reverb_mix
    mix = spectral_highpass(mix, 30.0, order=2)   # remove sub-sonic rumble / DC

    # Fades (raised cosine) on the otherwise loopable render.
    fi = int(FADE_IN_S * SR)
    fo = int(FADE_OUT_S * SR)
    gain = np.ones(n)
    gain[:fi] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fi))
    gain[n - fo:] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, fo))
    mix *= gain[:, None]

    # Level: aim the whole-file RMS (what ffmpeg's volumedetect calls mean_volume)
    # at TARGET_RMS_DBFS, but never let the sample peak exceed PEAK_CEILING_DBFS.
    rms = np.sqrt(np.mean(mix ** 2))
    peak = np.max(np.abs(mix))
    g = min(10 ** (TARGET_RMS_DBFS / 20) / rms, 10 ** (PEAK_CEILING_DBFS / 20) / peak)
    return mix * g


# --------------------------------------------------------------------------- the two beds

# D major, I - V - vi - IV with smooth voice leading; 96 BPM, 8 beats per chord (5 s).
BED = Bed(
    name="bed",
    seconds=40.0, bpm=96, beats_per_chord=8, steps_per_beat=1,
    chords=(
        # Dadd9: D3 A3 D4 E4 F#4 ; arp around D5-A5
        Chord(pad=(50, 57, 62, 64, 66), root=38,
              arp=(74, 78, 81, 78, 76, 81, None, 78)),
        # A (A/C# colour kept in the pad): C#3 A3 C#4 E4 A4
        Chord(pad=(49, 57, 61, 64, 69), root=33,
              arp=(73, 76, 81, 76, 73, 76, None, 81)),
        # Bm7: D3 F#3 B3 D4 A4
        Chord(pad=(50, 54, 59, 62, 69), root=35,
              arp=(74, 78, 83, 78, 74, 81, None, 78)),
        # Gmaj7: D3 G3 B3 D4 F#4
        Chord(pad=(50, 55, 59, 62, 66), root=31,
              arp=(74, 79, 83, 79, 78, 74, None, 76)),
    ),
    pad_attack=1.6, pad_release=2.2, pad_cutoff=1800.0, tri_mix=0.35,
    pad_level=1.0, sub_level=0.30, bell_level=0.65, bell_decay=1.6,
    reverb_mix=0.45, seed=1,
)

# C major / A minor, vi - IV - I - V: starts on the minor chord, resolves warm.
# 64 BPM, 8 beats per chord (7.5 s); bells every other beat, darker and quieter.
BED_GENTLE = Bed(
    name="bed_gentle",
    seconds=30.0, bpm=64, beats_per_chord=8, steps_per_beat=1,
    chords=(
        # Am9: A2 E3 G3 B3 C4
        Chord(pad=(45, 52, 55, 59, 60), root=33,
              arp=(69, None, 72, None, 76, None, 71, None)),
        # Fmaj7: F2 C3 E3 A3 C4
        Chord(pad=(41, 48, 52, 57, 60), root=29,
              arp=(69, None, 72, None, 76, None, 72, None)),
        # Cadd9: C3 E3 G3 D4 E4  (no root doubling in the pad; the sub has it)
        Chord(pad=(48, 52, 55, 62, 64), root=36,
              arp=(67, None, 72, None, 74, None, 76, None)),
        # Gsus2 -> open fifth: G2 D3 G3 A3 D4
        Chord(pad=(43, 50, 55, 57, 62), root=31,
              arp=(67, None, 69, None, 74, None, None, None)),
    ),
    pad_attack=2.4, pad_release=3.0, pad_cutoff=1300.0, tri_mix=0.25,
    pad_level=1.0, sub_level=0.25, bell_level=0.45, bell_decay=2.2,
    reverb_mix=0.55, seed=2,
)


# --------------------------------------------------------------------------- output

def write_wav(path: Path, x: np.ndarray, seed: int) -> None:
    """16-bit PCM with fixed-seed TPDF dither."""
    rng = np.random.default_rng(1000 + seed)
    scaled = x * 32767.0 + (rng.random(x.shape) - rng.random(x.shape))
    pcm = np.clip(np.round(scaled), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())


def ffmpeg_exe() -> str:
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def encode(wav: Path, m4a: Path) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
           "-i", str(wav),
           "-map_metadata", "-1",
           "-c:a", "aac", "-b:a", "128k", "-ar", str(SR), "-ac", "2",
           "-fflags", "+bitexact", "-flags:a", "+bitexact",
           "-movflags", "+faststart",
           str(m4a)]
    subprocess.run(cmd, check=True)


def volumedetect(path: Path) -> tuple[float, float]:
    """(mean_volume, max_volume) in dBFS as reported by ffmpeg's volumedetect."""
    res = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path),
                          "-af", "volumedetect", "-f", "null", "-"],
                         capture_output=True, text=True, check=True)
    mean = float(re.search(r"mean_volume:\s*(-?[\d.]+) dB", res.stderr).group(1))
    peak = float(re.search(r"max_volume:\s*(-?[\d.]+) dB", res.stderr).group(1))
    return mean, peak


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="run ffmpeg volumedetect on the results and fail if they peak at 0 dBFS")
    ap.add_argument("--wav-dir", type=Path, default=None,
                    help="also keep the intermediate WAVs in this directory")
    args = ap.parse_args(argv)

    OUT.mkdir(parents=True, exist_ok=True)
    ok = True
    with tempfile.TemporaryDirectory(prefix="billcast-bed-") as tmp:
        for bed in (BED, BED_GENTLE):
            wav_dir = args.wav_dir or Path(tmp)
            wav_dir.mkdir(parents=True, exist_ok=True)
            wav = wav_dir / f"{bed.name}.wav"
            m4a = OUT / f"{bed.name}.m4a"
            write_wav(wav, render(bed), bed.seed)
            encode(wav, m4a)
            line = f"{m4a.relative_to(ASSETS.parent)}  {bed.seconds:.0f} s  {m4a.stat().st_size} bytes"
            if args.check:
                mean, peak = volumedetect(m4a)
                line += f"  mean_volume {mean:.1f} dB  max_volume {peak:.1f} dB"
                ok &= peak < 0.0
            print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
