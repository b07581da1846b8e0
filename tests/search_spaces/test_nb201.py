import numpy as np
import pytest

from search_spaces import InvalidArchitecture, get_space

SPACE = get_space("nb201")
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_encode_decode_round_trip() -> None:
    codes = SPACE.encode(ARCH)
    assert codes.tolist() == [3, 3, 4, 1, 3, 1]
    assert SPACE.decode(codes) == ARCH
    assert SPACE.size == 15625


@pytest.mark.parametrize("bad", ["", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|none~0|+|none~0|+|none~0|none~1|none~2|"])
def test_bad_strings_are_named_errors(bad: str) -> None:
    with pytest.raises(InvalidArchitecture):
        SPACE.encode(bad)


def test_isomorphism_classes() -> None:
    """NAS-Bench-201 has 6,466 functionally distinct cells among 15,625 strings."""
    hashes = {SPACE.canonical_hash(SPACE.decode(np.unravel_index(i, SPACE.dims))) for i in range(SPACE.size)}
    assert len(hashes) == 6466


def test_isomorphic_cells_share_a_hash() -> None:
    # node 1 is a copy of the input, so reading from node 0 or node 1 is the same
    a = "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|"
    b = "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|"
    assert SPACE.canonical_hash(a) == SPACE.canonical_hash(b)
    assert SPACE.canonical_hash(a) != SPACE.canonical_hash(ARCH)


def test_mutate_and_neighbours_change_one_edge() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        child = SPACE.mutate(ARCH, rng)
        assert (SPACE.encode(child) != SPACE.encode(ARCH)).sum() == 1
    assert len(SPACE.neighbours(ARCH)) == 6 * 4


def test_torch_network_runs() -> None:
    torch = pytest.importorskip("torch")
    model = SPACE.build_model(ARCH, num_classes=10, in_channels=3).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
