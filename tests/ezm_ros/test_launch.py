"""The launch file, `ezm-sim` and the params YAML all come from the one node list (ezm_ros.nodes).

These checks need no launch install: the launch file's syntax tree (what it imports, where), the node
list, the params YAML. The launch file itself runs under the real `ros2 launch` from a colcon install in
tests/ezm_ros/test_ros2_launch.py.
"""

from __future__ import annotations

import ast
import importlib
import re
from glob import glob
from pathlib import Path

import pytest
import yaml

from ezm_ros import mode_keys, nodes

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / "launch" / "sim.launch.py"
LAUNCH_MODULES = ("launch", "launch_ros")


def test_launch_file_compiles_and_imports_launch_only_at_top_or_inside_generate():
    source = LAUNCH_FILE.read_text()
    tree = ast.parse(source, filename=str(LAUNCH_FILE))
    compile(tree, str(LAUNCH_FILE), "exec")
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    allowed = set(map(id, tree.body)) | set(map(id, ast.walk(functions["generate_launch_description"])))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if module.split(".")[0] in LAUNCH_MODULES:
                assert id(node) in allowed, f"line {node.lineno}: {module} imported outside the top level"
    assert re.search(r"from ezm_ros import nodes", source)
    assert "nodes.stack_nodes(" in source and "nodes.LAUNCH_ARGUMENTS" in source


def test_node_list_options():
    default = nodes.stack_nodes(nodes.StackOptions())
    assert [s.name for s in default] == ["ezm_sim", "ezm_planner", "ezm_visualization", "rviz2"]
    rviz = default[-1]
    assert rviz.module is None and Path(rviz.arguments[1]).is_file()
    headless = nodes.stack_nodes(nodes.StackOptions(rviz=False))
    assert [s.name for s in headless] == ["ezm_sim", "ezm_planner"]
    with pytest.raises(ValueError, match="true or false"):
        nodes.StackOptions.from_strings({"lockstep": "maybe"})


def test_every_node_of_the_list_is_a_console_script_with_a_main():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for spec in nodes.stack_nodes(nodes.StackOptions(web_view=True)):
        if spec.module is None:
            continue
        assert scripts[spec.executable] == f"{spec.module}:main"
        assert spec.module.split(".")[0] == spec.package, "colcon installs a script into its own package"
        assert callable(importlib.import_module(spec.module).main)


def test_params_file_names_only_declared_parameters_of_listed_nodes():
    params = yaml.safe_load(nodes.config_file(nodes.PARAMS_FILE).read_text())
    specs = {s.name: s for s in nodes.stack_nodes(nodes.StackOptions(web_view=True, safety=True)) if s.module}
    assert {key.removeprefix("/**/") for key in params} == set(specs)
    for key, section in params.items():
        spec = specs[key.removeprefix("/**/")]
        source = Path(importlib.import_module(spec.module).__file__).read_text()
        declared = set(re.findall(r'declare\(\s*(?:self|node),\s*"(\w+)"', source)) | {"use_sim_time"}
        if "declare_scheduling(" in source:  # node_runtime's, shared by the control-loop nodes
            shared = Path(importlib.import_module("ezm_ros.node_runtime").__file__).read_text()
            declared |= set(re.findall(r'declare\(\s*node,\s*"(\w+)"', shared.split("def declare_scheduling")[1]))
        undeclared = set(section["ros__parameters"]) - declared
        assert not undeclared, f"{key}: {undeclared} are not parameters of {spec.module}"
        assert set(spec.parameters) <= declared | {"use_sim_time"}


def test_colcon_installs_the_launch_file_and_its_config():
    # ezm_ros/setup.py's data_files globs, relative to ezm_ros/ as colcon runs it.
    launch = glob(str(REPO / "ezm_ros" / "../launch/*.launch.py"))
    config_dir = REPO / "ezm_ros" / "../launch/config"
    config = glob(str(config_dir / "*.yaml")) + glob(str(config_dir / "*.rviz"))
    assert [Path(p).name for p in launch] == ["sim.launch.py"]
    assert {Path(p).name for p in config} == {nodes.PARAMS_FILE, nodes.RVIZ_FILE, mode_keys.KEYS_FILE}
