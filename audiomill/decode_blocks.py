"""Decoded frames -> 16 kHz mono float32 in large blocks: the inner loop of ``audio.decode_audio``.

Per frame, the only work is one copy of its planes into a preallocated block (about
``BLOCK_SAMPLES`` samples per channel at the source rate). A full block is averaged to mono and
resampled in one call, and the result is copied into one output array that grows by doubling.

The output is bit-identical to converting frame by frame (``to_ndarray``, average, resample each
frame), which is what audiomill did before: the average is per sample (the same numpy operations
on the same memory layout, only longer), and FFmpeg's resampler produces the same samples however
its input is cut. ``tests/test_audio.py`` pins this against the frame-by-frame reference.
"""

from __future__ import annotations

import av
import numpy as np
from av.audio.frame import format_dtypes
from numpy.lib.stride_tricks import sliding_window_view

from audiomill.curation.quality import frame_length, sampled_bandwidth_hz
from audiomill.schema import SAMPLE_RATE

BLOCK_SAMPLES = 1 << 16  # per channel, at the source rate: 1.4-8 s of audio, <= 8 MiB for 32 ch int32
_FIRST_CAPACITY = 1 << 20  # output samples (65 s) when the stream declares no duration
_INT_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2.0**31, np.dtype(np.int64): 2.0**63}
# int16/int32 -> float32 times a power of two rounds once, like the float64 division then float32
# cast of the general path (int64 would round twice there, so it stays on the general path)
_EXACT_STEREO_SCALE = {np.dtype(np.int16): np.float32(2.0**-15), np.dtype(np.int32): np.float32(2.0**-31)}


class OutputBuffer:
    """A float32 array that grows by doubling; ``finite`` is False once a non-finite sample came."""

    def __init__(self, capacity: int) -> None:
        self._data = np.empty(capacity if capacity > 0 else _FIRST_CAPACITY, np.float32)
        self.size = 0
        self.finite = True

    def append(self, samples: np.ndarray) -> None:
        end = self.size + samples.size
        if end > self._data.size:
            grown = np.empty(max(end, 2 * self._data.size), np.float32)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size:end] = samples
        self.finite = self.finite and bool(np.isfinite(samples).all())
        self.size = end

    def samples(self) -> np.ndarray:
        """The samples so far: a view when the buffer is nearly full, else a right-sized copy."""
        if self.size >= 0.9 * self._data.size:
            return self._data[: self.size]
        return self._data[: self.size].copy()


class MonoResampler:
    """float32 mono blocks at the source rate into an ``OutputBuffer`` at SAMPLE_RATE.

    Behaves like one ``av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)`` fed
    mono frames: it passes samples through when the first block is already at SAMPLE_RATE
    (PyAV's passthrough, decided once), and a later rate change raises PyAV's ``ValueError``.
    """

    def __init__(self, output: OutputBuffer) -> None:
        self.output = output
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self._first_rate: int | None = None

    def check_rate(self, rate: int) -> None:
        if self._first_rate is None:
            self._first_rate = rate
        elif rate != self._first_rate and self._first_rate != SAMPLE_RATE:
            raise ValueError("Frame does not match AudioResampler setup.")

    def push(self, mono: np.ndarray, rate: int) -> None:
        self.check_rate(rate)
        if self._first_rate == SAMPLE_RATE:
            self.output.append(mono)
            return
        frame = av.AudioFrame.from_ndarray(mono[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        self._emit(self._resampler.resample(frame))

    def flush(self) -> None:
        if self._first_rate is not None and self._first_rate != SAMPLE_RATE:
            self._emit(self._resampler.resample(None))

    def _emit(self, frames: list[av.AudioFrame]) -> None:
        for out in frames:
            self.output.append(np.frombuffer(out.planes[0], dtype=np.float32, count=out.samples))


class BandSampler:
    """Frames of the native-rate mono signal, for its bandwidth before resampling
    (``orig_bandwidth_hz``, ``quality.sampled_bandwidth_hz``).

    Frames start at every ``stride``-th sample of the stream, back to back at first; when more
    than ``MAX_FRAMES`` are held, every other one is dropped and the stride doubles. The frames
    kept are therefore every multiple of the final stride, however the stream was cut into
    blocks, and memory stays bounded (512 frames of 32 ms: 2 MiB at 48 kHz) for any length.
    """

    MAX_FRAMES = 512

    def __init__(self) -> None:
        self._rate: int | None = None
        self._length = 0
        self._stride = 0
        self._frames: list[np.ndarray] = []
        self._tail = np.zeros(0, np.float32)  # the last length - 1 samples seen
        self._seen = 0  # samples seen so far

    def add(self, mono: np.ndarray, rate: int) -> None:
        if self._rate is None:
            self._rate, self._length = rate, frame_length(rate)
            self._stride = self._length
        elif rate != self._rate:  # only a stream that began at 16 kHz gets here (the resampler
            return  # refuses other rate changes); the band is measured at the first rate only
        data = np.concatenate([self._tail, mono]) if self._tail.size else mono
        begin = self._seen - self._tail.size  # stream position of data[0]
        first = -(-begin // self._stride) * self._stride
        starts = np.arange(first, begin + data.size - self._length + 1, self._stride) - begin
        if starts.size:  # one array per frame, so a dropped frame frees its memory
            windows = sliding_window_view(data, self._length)
            self._frames.extend(windows[start].copy() for start in starts)
        while len(self._frames) > self.MAX_FRAMES:
            self._frames, self._stride = self._frames[::2], self._stride * 2
        self._seen += mono.size
        self._tail = data[-(self._length - 1):].copy() if self._length > 1 else data[:0]

    def bandwidth_hz(self) -> float | None:
        """The signal bandwidth in Hz at the native rate; None below one frame of audio."""
        if not self._frames or self._rate is None:
            return None
        return sampled_bandwidth_hz(np.stack(self._frames), self._rate)


class MonoBlocks:
    """Collects decoded frames of one layout into a block; a full block goes to the resampler."""

    def __init__(self, expected_samples: int) -> None:
        self.output = OutputBuffer(expected_samples)
        self.band = BandSampler()
        self._resampler = MonoResampler(self.output)
        self._key: tuple[str, int, int] | None = None  # (sample format, channels, rate)
        self._block: np.ndarray | None = None
        self._planar = False
        self._filled = 0  # samples per channel in the block

    def add(self, frame: av.AudioFrame) -> None:
        key = (frame.format.name, frame.layout.nb_channels, frame.sample_rate)
        if key != self._key:
            self.push_pending()
            self._resampler.check_rate(frame.sample_rate)  # fail where frame-by-frame would
            self._start(key, frame.format.is_planar)
        samples = frame.samples
        if self._filled + samples > BLOCK_SAMPLES:
            self.push_pending()
        if samples > BLOCK_SAMPLES:  # a huge frame: convert it on its own
            self._push(mono_of(frame.to_ndarray(), key[1], self._planar), key[2])
            return
        self._copy_planes(frame, samples)
        self._filled += samples

    def push_pending(self) -> None:
        """Average and resample the samples collected so far (the block is then empty)."""
        if not self._filled or self._key is None or self._block is None:
            return
        channels, filled = self._key[1], self._filled
        self._filled = 0
        data = self._block[:, :filled] if self._planar else self._block[:, : filled * channels]
        self._push(mono_of(data, channels, self._planar), self._key[2])

    def _push(self, mono: np.ndarray, rate: int) -> None:
        self._resampler.push(mono, rate)  # raises on a rate change before the band sees it
        self.band.add(mono, rate)

    def finish(self) -> None:
        self.push_pending()
        self._resampler.flush()

    def output_after_error(self) -> int:
        """Output samples once everything decoded before an error went through (as per frame)."""
        try:
            self.push_pending()
        except (av.FFmpegError, ValueError, MemoryError):
            pass
        return self.output.size

    def _start(self, key: tuple[str, int, int], planar: bool) -> None:
        self._key, self._planar, self._filled = key, planar, 0
        dtype = np.dtype(format_dtypes[key[0]])
        channels = key[1]
        shape = (channels, BLOCK_SAMPLES) if planar else (1, BLOCK_SAMPLES * channels)
        self._block = np.empty(shape, dtype)

    def _copy_planes(self, frame: av.AudioFrame, samples: int) -> None:
        assert self._block is not None and self._key is not None
        dtype, start = self._block.dtype, self._filled
        if self._planar:
            for channel, plane in enumerate(frame.planes):
                self._block[channel, start:start + samples] = np.frombuffer(plane, dtype, count=samples)
        else:
            channels = self._key[1]
            self._block[0, start * channels:(start + samples) * channels] = np.frombuffer(
                frame.planes[0], dtype, count=samples * channels)


def mono_of(data: np.ndarray, channels: int, planar: bool) -> np.ndarray:
    """Float32 mean of the channels of ``data``, shaped as ``AudioFrame.to_ndarray`` returns it:
    (channels, n) when planar, (1, n * channels) interleaved when packed."""
    if not planar and channels == 2 and data.dtype in _EXACT_STEREO_SCALE:
        return _interleaved_stereo_mean(data.reshape(-1, 2), _EXACT_STEREO_SCALE[data.dtype])
    if not planar:
        data = data.reshape(-1, channels).T
    if data.dtype == np.uint8:
        data = (data.astype(np.float32) - 128.0) / 128.0
    elif data.dtype in _INT_SCALE:
        data = (data / _INT_SCALE[data.dtype]).astype(np.float32)
    else:
        data = data.astype(np.float32, copy=False)
    return data[0] if channels == 1 else data.mean(axis=0, dtype=np.float32)


def _interleaved_stereo_mean(pairs: np.ndarray, scale: np.float32) -> np.ndarray:
    """(left + right) / 2 of interleaved integer stereo, (n, 2), in float32: the same bits as
    ``mean(axis=0, dtype=float32)`` of the scaled channels (one float32 add, then an exact halving;
    integer input cannot give -0.0), without numpy's slow length-2 inner reduction loop."""
    left = pairs[:, 0].astype(np.float32)
    left *= scale
    right = pairs[:, 1].astype(np.float32)
    right *= scale
    left += right
    left *= np.float32(0.5)
    return left
