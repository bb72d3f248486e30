"""Dataset adapters: one registry name each, explicit layout-detection order, read-only
constructors, and dataset cards registered at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from iqa_bench.config import (
    load_dataset_card,
    load_dataset_card_file,
    register_dataset_card,
    unregister_dataset_card,
)
from iqa_bench.datasets import (
    DATASETS,
    BAPPSDataset,
    Dataset,
    FolderDataset,
    SyntheticDataset,
    detection_order,
    open_dataset,
    register_adapter,
)
from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.errors import DataNotFoundError, InputError


def test_each_adapter_carries_the_one_name_it_is_registered_under():
    for name in DATASETS:
        assert DATASETS.get(name).adapter == name


def test_claiming_adapters_have_distinct_ranks_and_synthetic_claims_no_path():
    ranks = [cls.detect_rank for cls in detection_order()]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert SyntheticDataset not in detection_order()
    assert SyntheticDataset.detect_rank is None and BAPPSDataset.detect_rank is not None


def _bapps_folder_with_a_study_csv(root: Path) -> Path:
    """A folder both ``bapps`` (2afc/ inside) and ``folder`` (2afc.csv inside) could read."""
    make_bapps_layout(root, {"cnn": 2}, None, size=8)
    (root / "2afc.csv").write_text(
        "ref,p0,p1,h\n2afc/val/cnn/ref/000000.png,2afc/val/cnn/p0/000000.png,"
        "2afc/val/cnn/p1/000000.png,0.5\n"
    )
    assert BAPPSDataset.is_layout(root) and FolderDataset.is_layout(root)
    return root


def test_a_folder_two_adapters_could_read_goes_to_the_lower_rank(tmp_path):
    root = _bapps_folder_with_a_study_csv(tmp_path / "both")
    assert BAPPSDataset.detect_rank < FolderDataset.detect_rank
    ds = open_dataset(root)
    assert type(ds) is BAPPSDataset and len(ds.samples("2afc")) == 2


class _ClaimsMarkedFolders(Dataset):
    """Claims any folder holding ``claim.txt``; reads nothing."""

    @classmethod
    def is_layout(cls, path: Path) -> bool:
        return (path / "claim.txt").is_file()

    def _load(self):
        return {}


@pytest.mark.parametrize(
    ("name", "rank", "wins"),
    [("zzz-claims", 1, True), ("aaa-claims", 10_000, False)],
)
def test_detection_follows_ranks_not_names(name, rank, wins, tmp_path):
    root = _bapps_folder_with_a_study_csv(tmp_path / "study")
    (root / "claim.txt").write_text("")
    adapter = type(name, (_ClaimsMarkedFolders,), {})
    register_adapter(name, detect_rank=rank)(adapter)
    try:
        assert type(open_dataset(root)) is (adapter if wins else BAPPSDataset)
    finally:
        DATASETS.remove(name)


def test_a_taken_rank_is_refused_naming_its_holder():
    adapter = type("Clash", (_ClaimsMarkedFolders,), {})
    with pytest.raises(InputError, match=r"detect_rank 10 is taken by 'bapps'"):
        register_adapter("clash", detect_rank=BAPPSDataset.detect_rank)(adapter)
    assert "clash" not in DATASETS


TINY_SYNTHETIC = {
    "name": "tiny-synthetic",
    "version": 1,
    "adapter": "synthetic",
    "description": "a few generated triplets",
    "synthetic": True,
    "params": {
        "val_per_subset": 2,
        "train_per_subset": 1,
        "jnd_per_subset": 2,
        "val_subsets": ["blur"],
        "train_subsets": ["noise"],
        "jnd_subsets": ["noise"],
    },
}


def test_constructing_the_synthetic_adapter_only_reads(tmp_path):
    card = register_dataset_card(TINY_SYNTHETIC)
    try:
        root = tmp_path / card.name
        with pytest.raises(DataNotFoundError, match="no BAPPS data"):
            SyntheticDataset(root, card=card)
        assert not root.exists()
        ds = open_dataset(card.name, data_root=tmp_path)  # opening by name generates it
        assert ds.synthetic and (root / "GENERATED.json").is_file()
        assert len(ds.samples("2afc")) == 2
    finally:
        unregister_dataset_card(card.name)


@pytest.fixture
def lab_study(tmp_path):
    make_bapps_layout(tmp_path / "data" / "lab-study", {"faces": 3}, {"faces": 2}, size=8)
    yield {
        "name": "lab-study",
        "version": 2,
        "adapter": "bapps",
        "description": "our 2AFC/JND study",
        "params": {"load_size": None},
    }
    unregister_dataset_card("lab-study")


def test_a_registered_dataset_card_opens_like_a_yaml_card(lab_study, tmp_path):
    register_dataset_card(lab_study)
    ds = open_dataset("lab-study", data_root=tmp_path / "data")
    assert (ds.name, ds.version, ds.tasks()) == ("lab-study", 2, ("2afc", "jnd"))
    assert ds.load_size is None
    register_dataset_card(lab_study)  # the same card again: no error


def test_a_registered_card_may_not_replace_another_with_the_same_name(lab_study):
    register_dataset_card(lab_study)
    with pytest.raises(InputError, match="dataset 'lab-study' already exists with other"):
        register_dataset_card({**lab_study, "version": 3})
    with pytest.raises(InputError, match="dataset 'bapps' already exists"):
        register_dataset_card({**lab_study, "name": "bapps"})


def test_a_dataset_card_file_registers_and_names_its_mistakes(lab_study, tmp_path):
    with pytest.raises(DataNotFoundError, match="dataset card .*lab-study.yaml does not exist"):
        load_dataset_card_file(tmp_path / "lab-study.yaml")
    (tmp_path / "other.yaml").write_text(
        "name: lab-study\nversion: 1\nadapter: bapps\ndescription: x\n"
    )
    with pytest.raises(InputError, match="name 'lab-study' must equal the file name 'other'"):
        load_dataset_card_file(tmp_path / "other.yaml")
    (tmp_path / "lab-study.yaml").write_text(
        "name: lab-study\nversion: 2\nadapter: bapps\ndescription: our 2AFC/JND study\n"
        "params: {load_size: null}\n"
    )
    assert load_dataset_card_file(tmp_path / "lab-study.yaml") == load_dataset_card("lab-study")


def test_an_unknown_adapter_in_a_registered_card_is_named_with_suggestions(lab_study, tmp_path):
    register_dataset_card({**lab_study, "adapter": "bapp"})
    with pytest.raises(InputError, match=r"unknown dataset adapter 'bapp'\. Did you mean 'bapps'"):
        open_dataset("lab-study", data_root=tmp_path / "data")
