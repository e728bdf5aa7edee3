"""The shared plumbing: typed configs, registries, the CLI error policy and journal files."""
from dataclasses import dataclass, field

import pytest

from narnas import config
from narnas.cli import parse_overrides, run_main
from narnas.errors import ConfigError, DamagedFileError, RegistryError
from narnas.files import append_jsonl, read_jsonl
from narnas.registry import Registry


@dataclass
class Inner:
    rate: float = 0.1
    name: str | None = None


@dataclass
class Outer:
    epochs: int = 3
    flag: bool = False
    sizes: tuple = (1, 2)
    inner: Inner = field(default_factory=Inner)
    extra: dict = field(default_factory=dict)

    def validate(self):
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")


def test_build_checks_types_and_nests():
    built = config.build(Outer, {"epochs": 5, "flag": "true", "sizes": [3], "inner": {"rate": 2, "name": None}})
    assert built == Outer(epochs=5, flag=True, sizes=(3,), inner=Inner(rate=2.0))
    assert isinstance(built.inner.rate, float)
    assert config.to_dict(built) == {"epochs": 5, "flag": True, "sizes": [3], "inner": {"rate": 2.0, "name": None},
                                     "extra": {}}


@pytest.mark.parametrize("values, message", [
    ({"epochs": 2.5}, "epochs must be a whole number, got 2.5"),
    ({"epochs": True}, "epochs must be a whole number, got True"),
    ({"epochs": "abc"}, "epochs must be a whole number, got 'abc'"),
    ({"flag": 1}, "flag must be true or false"),
    ({"inner": {"rate": "fast"}}, "inner.rate must be a number, got 'fast'"),
    ({"inner": {"nope": 1}}, "unknown config key(s) nope in inner; valid: name, rate"),
    ({"inner": 3}, "inner must be a mapping"),
    ({"epochs": 0}, "epochs must be >= 1, got 0"),
    ({"epoch": 3}, "unknown config key(s) epoch for Outer; valid: epochs, extra, flag, inner, sizes"),
])
def test_build_refuses_bad_values_naming_their_path(values, message):
    with pytest.raises(ConfigError) as err:
        config.build(Outer, values)
    assert message in str(err.value)


def test_differences_and_paths():
    saved = {"a": {"b": 1, "c": {"d": 2}}, "run": {"quiet": False}}
    new = {"a": {"b": 1, "c": {"d": 3}}, "run": {"quiet": True}}
    assert config.differences(saved, new) == ["a.c.d", "run.quiet"]
    assert config.differences(saved, new, ignore=("run",)) == ["a.c.d"]
    tree = {}
    config.set_path(tree, "x.y.z", 1)
    assert tree == {"x": {"y": {"z": 1}}} and config.flatten(tree) == {"x.y.z": 1}


def test_registry_refuses_a_taken_name_and_lists_the_valid_ones():
    reg = Registry("gadget")

    @reg.register("a")
    def make_a():
        return 1

    with pytest.raises(RegistryError, match="gadget 'a' is already registered by .*make_a"):
        @reg.register("a")
        def other():
            return 2
    reg.register("a")(make_a)  # the same definition again (a reload) is not a clash
    assert reg.names() == ["a"] and reg.get("a") is make_a
    with pytest.raises(RegistryError, match="unknown gadget 'b'; valid: a"):
        reg.get("b")


def test_overrides_and_the_error_policy(capsys):
    assert parse_overrides(["epochs=3", "hidden=(64,)", "pool=mean", "flag=True"]) == {
        "epochs": 3, "hidden": (64,), "pool": "mean", "flag": True}
    with pytest.raises(ConfigError, match="--set takes KEY=VALUE"):
        parse_overrides(["epochs"])

    def user_error():
        raise ConfigError("bad\nthing")
    assert run_main(user_error) == 2
    assert capsys.readouterr().err == "error: bad thing\n"

    def bug():
        raise ZeroDivisionError("a bug keeps its traceback")
    with pytest.raises(ZeroDivisionError):
        run_main(bug)


def test_a_torn_journal_line_is_dropped_from_the_file_and_the_next_append_reads_back(tmp_path):
    path = tmp_path / "journal.jsonl"
    assert read_jsonl(path) == []
    append_jsonl(path, {"key": "a"})
    with open(path, "a") as f:
        f.write('{"key": "b", "va')  # a kill mid-write
    assert read_jsonl(path) == [{"key": "a"}]
    append_jsonl(path, {"key": "c"})  # starts on a fresh line, not glued to the torn one
    assert read_jsonl(path) == [{"key": "a"}, {"key": "c"}]
    path.write_text('{"key": "a"}\nnot json\n{"key": "c"}\n')  # damage before the last line is an error
    with pytest.raises(DamagedFileError, match="journal.jsonl: line 2 is not JSON"):
        read_jsonl(path)
