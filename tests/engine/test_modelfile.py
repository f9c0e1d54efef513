import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

import engine
from engine.errors import BlackBoxMismatchError, ModelFileError
from engine.modelfiles.modelfile import load_model, read_card


def test_round_trip_is_bit_exact(untrained_model_file, untrained_masker, blackbox):
    masker, card = load_model(untrained_model_file, blackbox)
    for key, value in untrained_masker.trainable_state_dict().items():
        assert torch.equal(masker.state_dict()[key], value), key
    assert card["blackbox"]["name"] == "efficientnet_lite0"
    assert card["masker"]["upsampler_channels"] == [128, 64, 32]
    assert json.loads(untrained_model_file.with_suffix(".card.json").read_text()) == card


def test_public_api_loads_a_model(untrained_model_file):
    model = engine.load_masker(untrained_model_file)
    masks = model(torch.rand(2, 3, 100, 150), [281, 967])
    assert masks.shape == (2, 1, 100, 150)
    assert model.blackbox(torch.rand(1, 3, 224, 224)).shape == (1, 1000)
    assert "efficientnet_lite0" in engine.list_blackboxes()
    with pytest.raises(ValueError):
        model(torch.rand(1, 3, 64, 64), [1000])


def test_tampered_black_box_hash_is_refused(tmp_path, untrained_model_file, blackbox):
    state = load_file(str(untrained_model_file))
    card = read_card(untrained_model_file)
    card["blackbox"]["weights_sha256"] = "0" * 64
    tampered = tmp_path / "tampered.safetensors"
    save_file(state, str(tampered), metadata={"card": json.dumps(card)})
    with pytest.raises(BlackBoxMismatchError, match="belongs to the black box 'efficientnet_lite0'"):
        load_model(tampered, blackbox)


def test_tampered_weights_are_refused(tmp_path, untrained_model_file, blackbox):
    state = load_file(str(untrained_model_file))
    state["head.bias"] = state["head.bias"] + 1
    tampered = tmp_path / "weights.safetensors"
    save_file(state, str(tampered), metadata={"card": json.dumps(read_card(untrained_model_file))})
    with pytest.raises(ModelFileError, match="altered"):
        load_model(tampered, blackbox)


def test_pickles_are_refused(tmp_path):
    pickled = tmp_path / "model.safetensors"
    pickled.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(pickled)
    torch_file = tmp_path / "model.pt"
    torch.save({"a": torch.zeros(1)}, torch_file)
    with pytest.raises(ModelFileError, match="pickle"):
        engine.load_masker(torch_file)


def test_a_safetensors_file_whose_header_length_starts_with_a_pickle_byte_is_read(untrained_model_file, tmp_path):
    """The header length's low byte is 0x80 (a pickle magic) for 1 file in 256: it must still load."""
    card = read_card(untrained_model_file)
    state = load_file(str(untrained_model_file))
    path = tmp_path / "unlucky.safetensors"
    for padding in range(256):  # grow the card until the header length's low byte is 0x80
        card["padding"] = "x" * padding
        save_file(state, str(path), metadata={"card": json.dumps(card)})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    assert read_card(path)["padding"] == card["padding"]


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nothing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ModelFileError):
        load_model(garbage)
