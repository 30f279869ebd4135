"""Writes the NWB 2 test fixtures with pynwb, the reference implementation, and what h5py and
NumPy read from them (the expected trial responses and oracle similarity).

    pip install pynwb h5py numpy
    python3 scripts/nwb_fixtures.py tests/fixtures/nwb

- allen_like.nwb: an Allen Brain Observatory-like natural-scenes session: 118 grayscale
  templates (an Images container named NaturalScene0..117, no order_of_images, as DANDI 000728
  writes them), each shown 50 times for 250 ms in random order with 40 blank presentations
  (frame -1) among them, 300 ROIs of dF/F at 8 Hz (processing/ophys/DfOverF/DfOverF, with
  timestamps), running speed, pupil size and pupil position; its large datasets chunked and
  gzip-compressed.
- multi_series.nwb: three response series (two under DfOverF, one under Fluorescence), timing by
  starting_time and rate, RGB templates as an ImageSeries stack, the presentations in
  intervals/trials with two numeric columns (stimulus_index, contrast) so the image column must
  be named; no behaviour; every dataset chunked and gzip-compressed (H5DataIO), as DANDI files
  usually are.
- bad_*.nwb: malformed files (no response series, timestamps of the wrong length, an image
  index past the templates, NaN in a response window).
- allen_like.expected/: what h5py and NumPy read: each trial's image, the responses (each ROI's
  mean over the samples in [start_time, stop_time)) of the first 200 trials and each ROI's sum
  over all, and Eq. 3 of the oracle images with Eq. 1 weights.
"""
import datetime
import io
import os
import sys
import zipfile

import h5py
import numpy as np
from dateutil.tz import tzutc
from hdmf.backends.hdf5.h5_utils import H5DataIO
from pynwb import NWBHDF5IO, NWBFile, TimeSeries

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_numpy  # noqa: E402  (the NumPy reference of Eq. 1-3)
from pynwb.base import Images
from pynwb.behavior import BehavioralTimeSeries, EyeTracking, PupilTracking, SpatialSeries
from pynwb.epoch import TimeIntervals
from pynwb.image import GrayscaleImage, ImageSeries
from pynwb.ophys import DfOverF, Fluorescence, ImageSegmentation, OpticalChannel, RoiResponseSeries

H, W = 36, 64


def sample_images(count):
    """The first `count` images of the shipped sample scan 1 (36 x 64, 0-255) as uint8."""
    root = os.path.join(os.path.dirname(__file__), "..", "sample_data", "scans", "scan_1.zip")
    z = zipfile.ZipFile(root)
    ids = np.load(io.BytesIO(z.read("meta/trials/frame_image_id.npy")))
    seen, out = set(), []
    for t, i in enumerate(ids):
        if i not in seen:
            seen.add(i)
            img = np.load(io.BytesIO(z.read(f"data/images/{t}.npy"))).reshape(H, W)
            out.append(np.clip(img, 0, 255).astype(np.uint8))
        if len(out) == count:
            break
    return out


def session(description):
    nwb = NWBFile(
        session_description=description,
        identifier=f"neureg-{description.replace(' ', '-')}",
        session_start_time=datetime.datetime(2026, 1, 1, tzinfo=tzutc()),
    )
    device = nwb.create_device(name="2p_microscope")
    channel = OpticalChannel(name="green", description="GCaMP", emission_lambda=520.0)
    plane = nwb.create_imaging_plane(
        name="imaging_plane", optical_channel=channel, description="V1 layer 2/3", device=device,
        excitation_lambda=920.0, imaging_rate=8.0, indicator="GCaMP6s", location="VISp",
    )
    ophys = nwb.create_processing_module(name="ophys", description="optical physiology")
    segmentation = ImageSegmentation()
    ophys.add(segmentation)
    return nwb, ophys, segmentation, plane


def roi_table(segmentation, plane, n):
    table = segmentation.create_plane_segmentation(
        name="PlaneSegmentation", description="ROIs", imaging_plane=plane
    )
    for i in range(n):
        mask = np.zeros((8, 8), dtype=np.float32)
        mask[i % 8, (i // 8) % 8] = 1.0
        table.add_roi(image_mask=mask)
    return table.create_roi_table_region(region=list(range(n)), description="all ROIs")


def gz(data, chunks=True):
    return H5DataIO(data, compression="gzip", shuffle=True, chunks=chunks)


def responses(images, order, starts, rate, samples, rois, rng):
    """dF/F: each ROI a thresholded random projection of the image shown, scaled on each
    presentation by a random gain, sparse noise, quantised to 1/32 (so that gzip and shuffle
    compress it)."""
    flat = np.stack([im.reshape(-1) for im in images]).astype(np.float64)
    flat = (flat - flat.mean(0)) / (flat.std() + 1e-9)
    weights = rng.normal(0, 1, (flat.shape[1], rois)) / np.sqrt(flat.shape[1])
    drive = np.maximum(flat @ weights - 1.0, 0)  # image x ROI: sparse, as calcium responses are
    t = np.arange(samples) / rate
    out = np.zeros((samples, rois), dtype=np.float64)
    for start, image in zip(starts, order):
        if image < 0:
            continue
        on = (t >= start) & (t < start + 0.25)
        out[on] += drive[image] * rng.gamma(2.0, 0.5, rois)
    out += rng.exponential(0.05, out.shape) * (rng.random(out.shape) < 0.03)
    return (np.round(out * 32) / 32).astype(np.float32)


def allen_like(path, rng):
    images = sample_images(118)
    order = np.repeat(np.arange(118), 50)
    rng.shuffle(order)
    blanks = rng.choice(len(order), 40, replace=False)
    order = np.insert(order, np.sort(blanks), -1)
    starts = 5.0 + np.arange(len(order)) * 0.25
    rate = 8.0
    samples = int((starts[-1] + 5.0) * rate)
    nwb, ophys, segmentation, plane = session("allen like natural scenes")
    rois = roi_table(segmentation, plane, 300)
    dff = responses(images, order, starts, rate, samples, 300, rng)
    timestamps = np.arange(samples) / rate
    series = RoiResponseSeries(
        name="DfOverF", data=gz(dff, (512, 300)), rois=rois, unit="n.a.", timestamps=gz(timestamps)
    )
    ophys.add(DfOverF(roi_response_series=series))
    templates = Images(
        name="natural_scenes_template",
        images=[GrayscaleImage(name=f"NaturalScene{k}", data=im) for k, im in enumerate(images)],
        description="118 natural scenes, no order_of_images (names give the index)",
    )
    nwb.add_stimulus_template(templates)
    table = TimeIntervals(name="natural_scenes_presentations", description="natural scenes")
    table.add_column(name="frame", description="template index, -1 blank")
    for start, image in zip(starts, order):
        table.add_interval(start_time=float(start), stop_time=float(start + 0.25), frame=int(image))
    nwb.add_time_intervals(table)
    behavior = nwb.create_processing_module(name="behavior", description="running and the eye")
    # The behaviour's timestamps are links to the responses' (as in DANDI 000728).
    speed = np.round(np.abs(np.cumsum(rng.normal(0, 0.5, samples))), 2).astype(np.float32)
    behavior.add(BehavioralTimeSeries(time_series=TimeSeries(
        name="running_speed", data=gz(speed), unit="cm/s", timestamps=series)))
    pupil = np.round(20 + np.cumsum(rng.normal(0, 0.05, samples)), 2)
    behavior.add(PupilTracking(time_series=TimeSeries(
        name="pupil_size", data=gz(pupil), unit="px", timestamps=series)))
    position = np.round(np.stack([160 + rng.normal(0, 2, samples),
                                  120 + rng.normal(0, 2, samples)], 1), 1)
    behavior.add(EyeTracking(spatial_series=SpatialSeries(
        name="pupil_location", data=gz(position), reference_frame="camera", timestamps=series)))
    with NWBHDF5IO(path, "w") as io_:
        io_.write(nwb)


def multi_series(path, rng):
    images = sample_images(50)
    order = np.concatenate([np.repeat(np.arange(20), 6), np.arange(20, 50)])
    rng.shuffle(order)
    starts = 2.0 + np.arange(len(order)) * 0.5
    rate = 10.0
    samples = int((starts[-1] + 2.0) * rate)
    nwb, ophys, segmentation, plane = session("several series rgb templates")
    rois = roi_table(segmentation, plane, 40)
    dff = responses(images, order, starts, rate, samples, 40, rng)
    ophys.add(DfOverF(roi_response_series=[
        RoiResponseSeries(name="plane0", data=gz(dff), rois=rois, unit="n.a.", rate=rate,
                          starting_time=0.0),
        RoiResponseSeries(name="plane1", data=gz(2 * dff), rois=rois, unit="n.a.", rate=rate,
                          starting_time=0.0),
    ]))
    ophys.add(Fluorescence(roi_response_series=RoiResponseSeries(
        name="raw", data=gz(dff + 1), rois=rois, unit="a.u.", rate=rate, starting_time=0.0)))
    # RGB: the gray image in green, a shifted copy in red and blue; luminance is BT.601's mix.
    rgb = np.stack([np.stack([np.roll(im, 3, 1), im, np.roll(im, -3, 1)], -1) for im in images])
    nwb.add_stimulus_template(ImageSeries(
        name="stimuli", data=gz(rgb.astype(np.uint8)), unit="n.a.", format="raw", rate=1.0))
    for k in range(len(order)):
        nwb.add_trial(start_time=float(starts[k]), stop_time=float(starts[k] + 0.5))
    nwb.add_trial_column(name="stimulus_index", description="template index",
                         data=[int(i) for i in order])
    nwb.add_trial_column(name="contrast", description="contrast", data=[1.0] * len(order))
    with NWBHDF5IO(path, "w") as io_:
        io_.write(nwb)


def small(path, rng, nan=False, index_past=False):
    """A tiny valid session (6 images x 3 repeats) to break afterwards."""
    images = sample_images(6)
    order = np.repeat(np.arange(6), 3)
    if index_past:
        order[4] = 9
    starts = 1.0 + np.arange(len(order)) * 0.5
    samples = int((starts[-1] + 1.0) * 10)
    nwb, ophys, segmentation, plane = session("small")
    rois = roi_table(segmentation, plane, 5)
    dff = responses(images, np.minimum(order, 5), starts, 10.0, samples, 5, rng)
    if nan:
        dff[int(starts[7] * 10) + 1, 2] = np.nan
    ophys.add(DfOverF(roi_response_series=RoiResponseSeries(
        name="dff", data=dff, rois=rois, unit="n.a.", timestamps=np.arange(samples) / 10.0)))
    nwb.add_stimulus_template(Images(
        name="templates", images=[GrayscaleImage(name=f"image{k}", data=im)
                                  for k, im in enumerate(images)],
        description="six images"))
    table = TimeIntervals(name="presentations", description="images")
    table.add_column(name="frame", description="template index")
    for start, image in zip(starts, order):
        table.add_interval(start_time=float(start), stop_time=float(start + 0.5), frame=int(image))
    nwb.add_time_intervals(table)
    with NWBHDF5IO(path, "w") as io_:
        io_.write(nwb, cache_spec=False)


def expected(path, out):
    """Trial responses and Eq. 3 of the oracle images, read with h5py and computed with NumPy."""
    os.makedirs(out, exist_ok=True)
    with h5py.File(path, "r") as f:
        dff = f["processing/ophys/DfOverF/DfOverF/data"][()].astype(np.float64)
        t = f["processing/ophys/DfOverF/DfOverF/timestamps"][()]
        table = f["intervals/natural_scenes_presentations"]
        start, stop, frame = table["start_time"][()], table["stop_time"][()], table["frame"][()]
    keep = frame >= 0
    start, stop, frame = start[keep], stop[keep], frame[keep]
    lo = np.searchsorted(t, start, side="left")
    hi = np.searchsorted(t, stop, side="left")
    r = np.stack([dff[a:b].mean(0) for a, b in zip(lo, hi)])
    np.save(os.path.join(out, "image_ids.npy"), frame.astype(np.int64))
    # The first 200 trials in full and each ROI's sum over all of them (the whole matrix would
    # be 7 MB).
    np.save(os.path.join(out, "responses_first_200.npy"), r[:200].astype(np.float32))
    np.save(os.path.join(out, "responses_sum.npy"), r.sum(0).astype(np.float32))
    # Every image here is repeated, so all are oracle images; Eq. 1-3 as check_numpy.py has them.
    s, _, _ = check_numpy.oracle(frame, r, np.unique(frame))
    np.save(os.path.join(out, "oracle_similarity.npy"), s.astype(np.float32))


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(118)
    allen = os.path.join(out, "allen_like.nwb")
    allen_like(allen, rng)
    expected(allen, os.path.join(out, "allen_like.expected"))
    multi_series(os.path.join(out, "multi_series.nwb"), rng)
    small(os.path.join(out, "bad_index.nwb"), rng, index_past=True)
    small(os.path.join(out, "bad_nan.nwb"), rng, nan=True)
    # No response series: the small session with its ophys module's series removed.
    small(os.path.join(out, "bad_no_series.nwb"), rng)
    with h5py.File(os.path.join(out, "bad_no_series.nwb"), "a") as f:
        del f["processing/ophys/DfOverF"]
    # Timestamps one sample short of the data.
    small(os.path.join(out, "bad_lengths.nwb"), rng)
    with h5py.File(os.path.join(out, "bad_lengths.nwb"), "a") as f:
        ts = f["processing/ophys/DfOverF/dff/timestamps"][()]
        del f["processing/ophys/DfOverF/dff/timestamps"]
        f["processing/ophys/DfOverF/dff/timestamps"] = ts[:-1]
    for name in sorted(os.listdir(out)):
        p = os.path.join(out, name)
        if os.path.isfile(p):
            print(f"{p}: {os.path.getsize(p)} bytes")


main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/nwb")
