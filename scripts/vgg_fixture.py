#!/usr/bin/env python3
"""Makes tests/fixtures/vgg19_*: a randomly initialised torchvision VGG19 (seed 0) cut after
conv3_1, four gray 36 x 64 images and PyTorch's conv3_1 features of them (after the ReLU,
`features[:12]`), which tests/vgg.rs checks neureg's VGG against.

    python3 scripts/vgg_fixture.py          # needs torch, torchvision, safetensors, numpy
"""
import os

import numpy as np
import torch
import torchvision
from safetensors.torch import save_file

here = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
torch.manual_seed(0)
net = torchvision.models.vgg19(weights=None).eval()
state = {k: v.contiguous() for k, v in net.state_dict().items()
         if k.startswith("features.") and int(k.split(".")[1]) <= 10}
save_file(state, os.path.join(here, "vgg19_to_conv3_1.safetensors"))
images = torch.rand(4, 1, 36, 64, generator=torch.Generator().manual_seed(1))
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
with torch.no_grad():
    features = net.features[:12]((images.repeat(1, 3, 1, 1) - mean) / std)
np.save(os.path.join(here, "vgg19_images.npy"), images.numpy())
np.save(os.path.join(here, "vgg19_conv3_1.npy"), features.numpy())
print("features", tuple(features.shape), "max", float(features.abs().max()))
