import torch
from torchvision.transforms.v2 import functional as TF

from trainer.evidence import blur, noisy_colour, random_alternative, remove_evidence


def test_separable_blur_equals_the_direct_2d_blur():
    images = torch.rand(2, 3, 56, 56)
    sigma = 10.0 * 56 / 224  # the same physical blur at a quarter of the size
    direct = TF.gaussian_blur(images, kernel_size=[17, 17], sigma=[sigma, sigma])  # radius ceil(3 sigma)
    # float32 sums of weights <= 1 on values <= 1: 2 x 17 terms vs 289 (worst n u = 1.7e-5, typically sqrt(n) u
    # = 1e-6); measured on AMD 7.7e-7, a margin of 13x
    assert torch.allclose(blur(images), direct, atol=1e-5)


def test_blur_keeps_constant_images_and_removes_detail():
    constant = torch.full((1, 3, 64, 64), 0.3)
    # normalised kernels: 2 passes of 17 terms on 0.3, worst 2 x 17 u x 0.3 = 6e-7 (measured: exact)
    assert torch.allclose(blur(constant), constant, atol=1e-6)
    stripes = torch.zeros(1, 3, 64, 64)
    stripes[..., ::2] = 1.0
    assert blur(stripes).std() < 0.01 * stripes.std()  # a 2-pixel period under sigma 2.5: attenuated ~e^-31


def test_noisy_colour_is_a_constant_colour_plus_noise():
    images = torch.rand(6, 3, 64, 64)
    fill = noisy_colour(images, noise_std=0.05, generator=torch.Generator().manual_seed(0))
    per_channel = fill.mean((2, 3))  # (6, 3)
    assert fill.shape == images.shape and 0 <= fill.min() and fill.max() <= 1
    assert per_channel.std(0).min() > 0.05  # colours differ between images
    inner = fill[(per_channel > 0.2).all(1) & (per_channel < 0.8).all(1)]  # images whose noise is not clipped
    # the noise's own std (0.05), estimated over 4096 pixels (+-1%), plus the colour's spread: a statistical
    # bound, not a rounding one
    assert len(inner) == 0 or 0.03 < float(inner.std((2, 3)).mean()) < 0.07


def test_alternative_modes():
    images = torch.rand(64, 3, 32, 32)
    assert torch.equal(random_alternative(images, blur_probability=1.0), blur(images))
    coloured = random_alternative(images, blur_probability=0.0, noise_std=0.0)
    assert torch.allclose(coloured, coloured.mean((2, 3), keepdim=True).expand_as(coloured))  # constant colours
    mixed = random_alternative(images, blur_probability=0.5, generator=torch.Generator().manual_seed(1))
    blurred = (mixed - blur(images)).abs().flatten(1).amax(1) == 0
    assert 16 <= int(blurred.sum()) <= 48


def test_alternative_is_drawn_afresh_per_call():
    images = torch.rand(8, 3, 32, 32)
    assert not torch.equal(random_alternative(images), random_alternative(images))


def test_phi_keeps_where_the_mask_is_one_and_fills_where_zero():
    images, alternative = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2] = 1
    mask[..., 3] = 0.5
    result = remove_evidence(images, mask, alternative)
    assert torch.equal(result[..., :2], images[..., :2])
    assert torch.equal(result[..., 2], alternative[..., 2])
    assert torch.allclose(result[..., 3], (images[..., 3] + alternative[..., 3]) / 2)
