"""Checks every Terraform module and example must pass, whichever cloud it is for: each directory under
terraform/modules and terraform/examples is picked up by itself. Static (python-hcl2), plus checkov run offline."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.terraform.hcl_tools import (
    ROOT,
    TerraformDir,
    directories,
    has_default,
    load,
    module_output_references,
    unresolved_references,
)

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
EXAMPLE_FILES = ("main.tf", "versions.tf")

DIRECTORIES = directories()
IDS = [f"{path.parent.name}/{path.name}" for path in DIRECTORIES]
EXAMPLES = [path for path in DIRECTORIES if path.parent.name == "examples"]


def test_there_is_something_to_check() -> None:
    assert any(path.parent.name == "modules" for path in DIRECTORIES)
    assert EXAMPLES


@pytest.mark.parametrize("path", DIRECTORIES, ids=IDS)
def test_the_directory_has_its_files(path: Path) -> None:
    expected = MODULE_FILES if path.parent.name == "modules" else EXAMPLE_FILES
    missing = [name for name in expected if not (path / name).is_file()]
    assert not missing, f"{path.relative_to(ROOT)} lacks {', '.join(missing)}"


@pytest.mark.parametrize("path", DIRECTORIES, ids=IDS)
def test_every_variable_is_typed_and_described(path: Path) -> None:
    variables = load(path).named("variable")
    untyped = [name for name, body in variables.items() if not body.get("type")]
    undescribed = [name for name, body in variables.items() if not str(body.get("description", "")).strip()]
    assert not untyped, f"variables without a type: {untyped}"
    assert not undescribed, f"variables without a description: {undescribed}"


@pytest.mark.parametrize("path", DIRECTORIES, ids=IDS)
def test_every_output_is_described(path: Path) -> None:
    outputs = load(path).named("output")
    undescribed = [name for name, body in outputs.items() if not str(body.get("description", "")).strip()]
    assert not undescribed, f"outputs without a description: {undescribed}"


@pytest.mark.parametrize("path", DIRECTORIES, ids=IDS)
def test_every_reference_resolves(path: Path) -> None:
    assert unresolved_references(load(path)) == []


@pytest.mark.parametrize("path", DIRECTORIES, ids=IDS)
def test_versions_pin_terraform_and_every_provider(path: Path) -> None:
    terraform = [block for block in load(path).blocks.get("terraform", []) if "required_providers" in block]
    assert terraform, "versions.tf needs a terraform block with required_providers"
    block = terraform[0]
    assert block.get("required_version"), "set required_version"
    providers = {name: spec for entry in block["required_providers"] for name, spec in entry.items()}
    unpinned = [name for name, spec in providers.items() if not (isinstance(spec, dict) and spec.get("version"))]
    assert not unpinned, f"providers without a version constraint: {unpinned}"
    undeclared = load(path).providers() - set(providers)
    assert not undeclared, f"providers used but not required: {undeclared}"


@pytest.mark.parametrize("path", [p for p in DIRECTORIES if p.parent.name == "modules"], ids=lambda p: p.name)
def test_the_module_readme_lists_every_input_and_output(path: Path) -> None:
    readme = (path / "README.md").read_text()
    module = load(path)
    absent = [name for name in [*module.named("variable"), *module.named("output")] if f"`{name}`" not in readme]
    assert not absent, f"README.md does not list: {absent}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_use_their_module_by_relative_path(path: Path) -> None:
    example = load(path)
    calls = example.named("module")
    assert calls, "an example calls a module of this repository"
    for name, call in calls.items():
        source = str(call.get("source", ""))
        assert source.startswith("../../modules/"), f"module {name}: source {source!r} is not a relative path"
        module_dir = (path / source).resolve()
        assert module_dir.is_dir(), f"module {name}: {source} does not exist"
        _check_call(name, call, load(module_dir))
    for call, output in module_output_references(example):
        module_dir = (path / str(calls[call]["source"])).resolve()
        assert output in load(module_dir).named("output"), f"module.{call}.{output} is not an output of the module"


def _check_call(name: str, call: dict[str, object], module: TerraformDir) -> None:
    meta = {"source", "version", "providers", "depends_on", "count", "for_each"}
    variables = module.named("variable")
    unknown = set(call) - meta - set(variables)
    required = {v for v, body in variables.items() if not has_default(body)}
    assert not unknown, f"module {name} sets variables the module does not declare: {sorted(unknown)}"
    assert not required - set(call), f"module {name} does not set required variables: {sorted(required - set(call))}"


@pytest.mark.parametrize("path", DIRECTORIES, ids=IDS)
def test_every_checkov_skip_says_why(path: Path) -> None:
    for file in path.glob("*.tf"):
        for check, reason in SKIP_COMMENT.findall(file.read_text()):
            assert len(reason.strip()) >= 20, f"{file.name}: skip of {check} needs a reason a reviewer can judge"


@pytest.mark.slow  # checkov parses the whole directory and runs ~1,000 checks: several seconds per directory
@pytest.mark.parametrize("path", DIRECTORIES, ids=IDS)
def test_checkov_finds_nothing_unexplained(path: Path) -> None:
    if not CHECKOV.exists():
        pytest.fail(f"checkov is missing at {CHECKOV.relative_to(ROOT)}: run `make {CHECKOV.relative_to(ROOT)}`")
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"}
    command = [str(CHECKOV), "-d", str(path), "--framework", "terraform", "--skip-download", "--quiet", "--compact"]
    result = subprocess.run([*command, "-o", "json"], capture_output=True, text=True, env=env, timeout=600, check=False)
    report = json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else None
    assert report is not None, f"checkov gave no report: {result.stderr[-2000:]}"
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}:{check['file_line_range'][0]})"
        for each in reports
        for check in each.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "checkov failed checks (fix them, or skip inline with a reason):\n" + "\n".join(failed)


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on PATH")
def test_every_file_is_terraform_fmt_clean() -> None:
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", str(ROOT / "terraform")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"not `terraform fmt`-clean: {result.stdout}"


def test_docs_expand_terraforms_argument_outputs_with_eval() -> None:
    """`push-pool create NAME $(terraform output -raw ...)` would pass the output's quotes through literally."""
    documents = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "terraform").rglob("README.md")]
    unquoted = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in documents
        for line in path.read_text().splitlines()
        if "$(terraform output" in line and "push-pool" in line and not line.lstrip().startswith("eval ")
    ]
    assert unquoted == []


def test_the_azure_create_arguments_survive_eval_as_separate_words() -> None:
    """The module's `push_pool_create_args` format (`--set 'NAME=JSON'`), expanded the way the docs say."""
    arguments = """--type aci --set 'subscription_id="abc"' --set 'subnet_ids=["a b","c"]'"""
    script = 'eval "set -- $ARGUMENTS"; printf "%s\\n" "$@"'
    expanded = subprocess.run(
        ["bash", "-c", script], env={"ARGUMENTS": arguments}, capture_output=True, text=True, check=True
    )
    words = expanded.stdout.splitlines()
    assert words == ["--type", "aci", "--set", 'subscription_id="abc"', "--set", 'subnet_ids=["a b","c"]']
