"""The "fallback" segmenter: no weights, a seeded random walker on colour + depth (walker.py).

Everything runs on a working copy of the view shrunk to at most `work_side` pixels on its long side.
Seeds: positive points -> object disks; negative points -> background disks; a box -> everything
outside it is background (and, without positive points, a disk at its centre is object); no box and
no mask -> the image border is background except where it looks like the object seeds (objects cut
by the frame). A soft mask prior (in a propagation: what the 3D mask knows of the view,
`rendered_prior`, sam/prior.py: 1 covered, 0.5 never seen, lower as more views voted a part out)
is evidence of its own, weighed against the view's edges (Grady's random walk with priors): pixels
beyond a band outside it that at least two views voted out are background seeds, the deepest part of its interior
is object seeds, and every other pixel is pulled towards the prior by a unary term weighted by the
prior's confidence (none where it has no opinion: the view's edges alone decide there), so that an
edge-free connection to the background drains the prior over a set share of the object's radius
(the drain's reach). A region the prior covers stays in the mask when edges (colour, depth) enclose
it, whatever its colour (a dark base under a light figure), and goes when it runs without an edge
into the background outside the band (a leak onto the ground): what a view removes from the 3D mask
is backed by that view's edges. Neither the self-prompts (picked where the rendered mask is highest,
which can be the leak itself) nor seed colours play a part there. Without a prior (a click, a box),
free pixels whose chromaticity (rg / (r + g + b): shading leaves it unchanged; depth is left out, it
varies across one object) is farther than t from every object seed, over a whole seed-sized disk
around them (a highlight or a groove inside the object is a speck, not a region), become background
seeds too: this keeps the walk from leaking into a touching object of another colour. Pixels connected to a positive
point whose chromaticity is within a quarter of t become object seeds (a random walker from one
small seed shrinks on textured objects: petals, patterns), unless that colour covers over a fifth of
the image (then it says nothing of the object). Multimask = three distances t (small: only what
looks like the seeds; large: the region bounded by colour and depth edges) and a fourth set by the
view's own contrast, a share of its median squared distance to the seeds, where that stands above
the photo's chromaticity noise (a grey photo has no colour to cut by; in a desaturated photo
every fixed t holds most of the background, and the walk then stops at the first shading edge, a
box's lit face; the contrast cut keeps the shaded faces); with a prior, three
drain reaches (tight: a long one keeps only what edges enclose; loose: a short one follows the
prior). With a depth and no prior, one more candidate: the shape, a walk on the depth's edges alone
from the same seeds (what the surface encloses around the click, whatever its texture: on an embossed
object the grooves' colour edges stop the colour walks short of its far side). Candidates that are
the same mask (IoU >= DISTINCT_IOU with a smaller one kept) are shown once: where the edges leave no
choice, the user gets one candidate, never three copies; of more than MAX_CANDIDATES the most stable
are kept, and a single-mask predict gives the most stable of its colour cut, the contrast cut and the shape. The
upsampled probability is thresholded at 0.5 and reduced to the connected parts holding a positive
point (or overlapping the prior). Score = SAM's stability score: IoU of the masks at 0.5 + delta and
0.5 - delta.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.transform import resize

from systems.inverse.ops import mask_iou
from systems.sam.errors import PromptError
from systems.sam.protocol import Prompt, SegmentResult, check_image, check_prompt
from systems.sam.walker import (
    chromaticity,
    colour_features,
    edge_differences,
    edge_weights,
    grain,
    laplacian,
    log_depth,
    random_walk,
)

DISTINCT_IOU = 0.9   # multimask candidates closer than this to a kept one are the same candidate
MAX_CANDIDATES = 3   # as SAM's multimask output (the viewer's keys 1 / 2 / 3): the most stable ones


@dataclass(frozen=True)
class FallbackConfig:
    work_side: int = 256                       # long side (px) of the image the walker solves on
    lightness_weight: float = 0.35             # L relative to a, b: shading edges count less than hue
    edge_sigma2: float = 0.003                 # squared colour step at which an edge weight is 1/e ...
    noise_factor: float = 1.0                  # ... or this many times the median step, if larger: the
                                               # grain of a photo is no edge
    depth_grain: float = 4.0                   # a squared log-depth step this many times the median one
                                               # weighs 1/e (a field's depth noise is no edge) ...
    depth_sigma2: float = 1e-4                 # ... and never less than this one (a 1% depth step)
    colour_cuts: tuple[float, float, float] = (0.01, 0.025, 0.04)  # multimask t (squared rg
                                               # chromaticity distance beyond which a pixel is background)
    single_index: int = 2                      # which t a single-mask predict uses (best on builtin)
    contrast_cut: float = 0.2                  # one more t: this share of the view's median squared
                                               # chromaticity distance to the object seeds (a desaturated
                                               # photo lies within every fixed t of the object's colour),
    contrast_noise: float = 4.0                # where it exceeds this many times the median squared
                                               # chromaticity step between neighbours (a grey photo's
                                               # chromaticity is noise: no colour to cut by)
    drain_reach: tuple[float, float, float] = (1.0, 0.5, 0.25)  # with a prior, multimask: how far an
                                               # edge-free connection to the background drains it, as a
                                               # share of the object's equivalent disk radius r (unary
                                               # weight 1 / (reach r)^2 against edge weights <= 1)
    reach_index: int = 1                       # which reach a single-mask predict uses
    band_share: float = 0.3                    # with a prior: background seeds lie beyond this share of r
                                               # outside it
    prior_core: float = 0.7                    # ... object seeds deeper inside than this share of its
                                               # deepest pixel
    known_background: float = 0.25             # background seeds only where the prior is below this
                                               # (0.5: no opinion; 0.25: one view voted it out; sam/prior.py)
    band_min_px: float = 3.0                   # the band is never narrower (working-resolution px)
    seed_radius: float = 0.012                 # seed disk radius as a fraction of the long side
    border_similarity: float = 0.25            # border pixels closer than this (relative squared
                                               # feature distance) to the object seeds stay unseeded
    stability_delta: float = 0.2               # score = IoU(p > 0.5 - delta, p > 0.5 + delta)
    core_share: float = 0.25                   # pixels connected to a positive point whose colour is
                                               # within this share of t are object seeds too ...
    core_max_area: float = 0.2                 # ... unless they cover more of the image than this (a
                                               # colour that is everywhere says nothing of the object)


def disk_pixels(shape: tuple[int, int], pts: np.ndarray, radius: float) -> np.ndarray:
    """bool [h, w]: disks of `radius` px around (x, y) points [P, 2] (at least the pixel itself)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros(shape, bool)
    for x, y in pts:
        out |= (xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 <= radius ** 2
        out[min(int(y), h - 1), min(int(x), w - 1)] = True
    return out


def wholly_beyond(dist: np.ndarray, cut: float, radius: float) -> np.ndarray:
    """bool [h, w]: pixels whose whole disk of `radius` px has dist [h, w] > cut (the image's
    outside counts as beyond): a speck of another colour inside an object (a highlight, a groove)
    is no evidence of background, a region of it is."""
    k = int(radius)
    yy, xx = np.mgrid[-k:k + 1, -k:k + 1]
    return ndimage.binary_erosion(dist > cut, xx ** 2 + yy ** 2 <= radius ** 2, border_value=1)


def keep_anchored(mask: np.ndarray, anchor: np.ndarray | None) -> np.ndarray:
    """Connected components of mask [H, W] bool that touch anchor [H, W] bool (all if none does)."""
    if anchor is None:
        return mask
    comp, _ = ndimage.label(mask)
    keep = np.unique(comp[anchor & mask])
    return np.isin(comp, keep[keep > 0]) if len(keep) else mask


class FallbackSegmenter:
    """Weight-free segmenter (see the module docstring); `depth` in set_view sharpens it a lot."""

    name = "fallback"
    rendered_box = False     # the prior's band bounds the walk
    rendered_prior = True    # in a propagation, what the 3D mask covers in the view decides the interior

    def __init__(self, config: FallbackConfig = FallbackConfig(), notice: str | None = None):
        self.config = config
        self.notice = notice
        self._shape: tuple[int, int] | None = None    # H, W of the view
        self._features: np.ndarray | None = None      # [h, w, 3] working-resolution colour features
        self._chroma: np.ndarray | None = None        # [h, w, 2] working-resolution rg chromaticity
        self._chroma_noise = 0.0                      # a colour cut at or below this is the photo's noise
        self._laplacian = None                        # [h*w, h*w] sparse graph Laplacian
        self._depth_cue = None                        # the view's depth edges (dh, dv, grain), or None
        self._shape_laplacian = None                  # [h*w, h*w] the Laplacian of those alone, made at a click

    def set_view(self, image: np.ndarray, *, view_name: str | None = None,
                 depth: np.ndarray | None = None) -> None:
        """Build the working-resolution features and graph of a view (image [H,W,3] uint8, depth [H,W])."""
        image, depth = check_image(image, depth)
        H, W = image.shape[:2]
        s = min(1.0, self.config.work_side / max(H, W))
        h, w = max(2, round(H * s)), max(2, round(W * s))
        if (h, w) != (H, W):
            image = (resize(image, (h, w), order=1, anti_aliasing=True) * 255).astype(np.uint8)
            if depth is not None:   # nearest: never blend an object's depth with the backdrop's
                depth = depth[(np.arange(h) * H // h)[:, None], (np.arange(w) * W // w)[None, :]]
        self._shape = (H, W)
        self._chroma = chromaticity(image)
        c = self.config
        self._chroma_noise = grain(*edge_differences(self._chroma), c.contrast_noise, 0.0)
        self._features = colour_features(image, c.lightness_weight)                   # [h, w, 3]
        dh, dv = edge_differences(self._features)
        cues = [(dh, dv, grain(dh, dv, c.noise_factor, c.edge_sigma2))]
        self._depth_cue = self._shape_laplacian = None
        if depth is not None:
            gh, gv = edge_differences(log_depth(depth))
            cues.append((gh, gv, grain(gh, gv, c.depth_grain, c.depth_sigma2)))
            self._depth_cue = cues[1]
        self._laplacian = laplacian(*edge_weights(cues))

    def _colour_distance(self, refs: np.ndarray) -> np.ndarray:
        """[h, w] smallest squared chromaticity distance to the working-resolution points refs [R, 2]."""
        rg = self._chroma
        h, w = rg.shape[:2]
        ref = rg[np.clip(refs[:, 1].astype(int), 0, h - 1), np.clip(refs[:, 0].astype(int), 0, w - 1)]
        return ((rg[:, :, None] - ref[None, None]) ** 2).sum(-1).min(-1)

    def _seeds(self, prompt: Prompt, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """Seeds int8 [h, w] (1 object, 0 background, -1 free) of a prompt without a mask prior, and
        the object reference points [R, 2] (x, y) at working resolution (what the object looks like)."""
        h, w = self._features.shape[:2]
        r = max(1.0, self.config.seed_radius * max(h, w))
        seeds = -np.ones((h, w), np.int8)
        pos = prompt.positive * scale                                              # [P+, 2]
        refs = [pos]
        if prompt.box is not None:
            x0, y0, x1, y1 = prompt.box * scale
            outside = np.ones((h, w), bool)
            outside[max(0, int(y0) - 1):int(np.ceil(y1)) + 1, max(0, int(x0) - 1):int(np.ceil(x1)) + 1] = False
            seeds[outside] = 0
            if not len(pos):
                pos = np.array([[(x0 + x1) / 2, (y0 + y1) / 2]], np.float32)
                refs.append(pos)
        refs = np.concatenate(refs)
        if prompt.box is None and len(pos):
            border = np.zeros((h, w), bool)
            border[[0, -1], :] = border[:, [0, -1]] = True
            dist = self._colour_distance(pos)
            seeds[border & (dist > self.config.border_similarity * float(dist.mean()))] = 0
        seeds[disk_pixels((h, w), prompt.negative * scale, r)] = 0
        seeds[disk_pixels((h, w), pos, r)] = 1
        return seeds, refs

    def predict(self, *, points=None, labels=None, box=None, mask=None, multimask: bool = False) -> SegmentResult:
        """Segment the current view: masks [C, H, W] bool, scores [C] float32 (C = 1 without
        multimask, else 1 to 3 distinct candidates, tight to loose, the depth's shape last).

        Raises PromptError for an invalid prompt or when no view is set.
        """
        if self._features is None:
            raise PromptError("no view set: call set_view(image) before predict")
        H, W = self._shape
        prompt = check_prompt(H, W, points, labels, box, mask)
        if prompt.mask is not None:
            return self._predict_with_prior(prompt, multimask)
        h, w = self._features.shape[:2]
        seeds, refs = self._seeds(prompt, w / W)
        if not (seeds == 1).any():
            raise PromptError("the prompt marks no object pixel: add a foreground point or a larger box")
        dist = self._colour_distance(refs)                                            # [h, w]
        cuts = self.config.colour_cuts if multimask else (self.config.colour_cuts[self.config.single_index],)
        contrast = self.config.contrast_cut * float(np.median(dist))
        cuts = (*cuts, contrast) if contrast > self._chroma_noise else cuts
        r = max(1.0, self.config.seed_radius * max(h, w))
        near = disk_pixels((h, w), prompt.positive * (w / W), 3 * r)
        anchor = disk_pixels((H, W), prompt.positive, 1.0) if len(prompt.positive) else None
        probs = []
        for cut in cuts:
            cut_seeds = seeds.copy()
            cut_seeds[wholly_beyond(dist, cut, r) & (seeds < 0) & ~near] = 0
            core = keep_anchored(dist <= self.config.core_share * cut, seeds == 1)
            if core.mean() <= self.config.core_max_area:
                cut_seeds[core & (cut_seeds < 0)] = 1
            probs.append(random_walk(self._laplacian, cut_seeds.ravel()).reshape(h, w))
        if self._depth_cue is not None:                   # the shape: only a click's (no prior) needs it
            if self._shape_laplacian is None:
                self._shape_laplacian = laplacian(*edge_weights([self._depth_cue]))
            probs.append(random_walk(self._shape_laplacian, seeds.ravel()).reshape(h, w))
        result = self._result(probs, anchor)
        if multimask:
            return result
        best = int(np.argmax(result.scores))
        return SegmentResult(result.masks[best:best + 1], result.scores[best:best + 1])

    def _predict_with_prior(self, prompt: Prompt, multimask: bool) -> SegmentResult:
        """The prior against the view's edges (module docstring): background beyond a band outside it,
        object seeds in its deepest part, a unary pull towards it everywhere else."""
        H, W = self._shape
        h, w = self._features.shape[:2]
        c = self.config
        prior = np.clip(resize(prompt.mask, (h, w), order=1, anti_aliasing=(h, w) != (H, W)), 0, 1)   # [h, w]
        inside = prior > 0.5
        if not inside.any():
            raise PromptError("the mask prior has no pixel above 0.5: add a foreground point or a larger mask")
        depth_in = ndimage.distance_transform_edt(inside)                             # [h, w] px to the outside
        radius = np.sqrt(inside.sum() / np.pi)                                        # equivalent disk radius
        band = max(c.band_min_px, c.band_share * radius)
        seeds = -np.ones((h, w), np.int8)
        seeds[(ndimage.distance_transform_edt(~inside) > band) & (prior < c.known_background)] = 0
        seeds[depth_in > c.prior_core * float(depth_in.max())] = 1
        seeds[disk_pixels((h, w), prompt.negative * (w / W), max(1.0, c.seed_radius * max(h, w)))] = 0
        soft = ndimage.gaussian_filter(prior.astype(np.float32), max(1.0, band / 2)).ravel()   # [h*w]
        confidence = np.abs(2.0 * soft - 1.0)                                         # 0 where it has no opinion
        reaches = c.drain_reach if multimask else (c.drain_reach[c.reach_index],)
        probs = [random_walk(self._laplacian, seeds.ravel(), soft, confidence / (reach * radius) ** 2).reshape(h, w)
                 for reach in reaches]
        return self._result(probs, prompt.mask > 0.5)

    def _result(self, probs: list[np.ndarray], anchor: np.ndarray | None) -> SegmentResult:
        """Masks at full size from working-resolution probabilities [h, w] (p > 0.5, the connected parts
        that hold the anchor), scored by stability (IoU of p > 0.5 + delta and p > 0.5 - delta); a
        mask the same as one kept before it (IoU >= DISTINCT_IOU) is dropped."""
        H, W = self._shape
        d = self.config.stability_delta
        masks, scores = [], []
        for prob in probs:
            full = resize(prob, (H, W), order=1) if prob.shape != (H, W) else prob        # [H, W]
            mask = keep_anchored(full > 0.5, anchor)
            if any(mask_iou(mask, kept) >= DISTINCT_IOU for kept in masks):
                continue
            masks.append(mask)
            loose, tight = prob > 0.5 - d, prob > 0.5 + d
            scores.append(tight.sum() / max(loose.sum(), 1))
        kept = np.sort(np.argsort(scores)[::-1][:MAX_CANDIDATES])
        return SegmentResult(np.stack(masks)[kept], np.asarray(scores, np.float32)[kept])
