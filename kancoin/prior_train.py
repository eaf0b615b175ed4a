"""`kancoin prior train`: images -> cohort members (whole, or cut into crops) -> a trained
body (kancoin.fit.cohort) -> .kprior bytes (kancoin.prior). Deterministic: the same
images, options and thread count give the same bytes (`make prior`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kancoin import prior as priors
from kancoin.fit.cohort import CohortConfig, Progress, members_from_images, train
from kancoin.signals import load_image


def cohort_images(
    paths: list[Path], crop: tuple[int, int] | None, stride: tuple[int, int] | None = None
) -> list[np.ndarray]:
    """Each image RGB float32; with crop=(W, H), an image at least that large in both
    dimensions becomes its WxH tiles (row-major) every `stride` pixels (default: the crop,
    tiles that do not overlap), a smaller one stays whole."""
    images = []
    for path in paths:
        image = load_image(path)
        if image.shape[2] != 3:
            image = np.repeat(image[:, :, :1], 3, axis=2)
        height, width = image.shape[:2]
        if crop is None or width < crop[0] or height < crop[1]:
            images.append(image)
            continue
        step_x, step_y = stride or crop
        for top in range(0, height - crop[1] + 1, step_y):
            for left in range(0, width - crop[0] + 1, step_x):
                images.append(
                    np.ascontiguousarray(image[top : top + crop[1], left : left + crop[0]])
                )
    return images


def build(
    paths: list[Path],
    config: CohortConfig,
    *,
    name: str,
    crop: tuple[int, int] | None = None,
    dtype: int = 1,
    progress: Progress | None = None,
) -> tuple[bytes, int]:
    """The .kprior bytes of a prior trained on `paths`, and the number of members."""
    images = cohort_images(paths, crop)
    spec, tensors = train(members_from_images(images), config, progress)
    digests = [priors.member_digest(np.round(image * 255).astype(np.uint8)) for image in images]
    return priors.to_bytes(spec, tensors, members=digests, name=name, dtype=dtype), len(images)
