"""The launch file, `ezm-sim` and the params YAML all come from the one node list (ezm_ros.nodes).

`launch` and `launch_ros` are not installable from PyPI, so the launch file is checked two ways: its
syntax tree (what it imports, where), and a run of generate_launch_description() against minimal
stand-ins of the few launch classes it uses, to see that it turns `stack_nodes` into Node actions.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
import types
from glob import glob
from pathlib import Path

import pytest
import yaml

from ezm_ros import nodes

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


class _Recorder:
    """Stand-in for a launch action class: keeps its arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


@pytest.fixture()
def fake_launch(monkeypatch):
    """Minimal `launch` / `launch_ros` modules: enough to run the launch file's own code."""

    class LaunchConfiguration:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context.launch_configurations[self.name]

    modules = {
        "launch": types.ModuleType("launch"),
        "launch.actions": types.ModuleType("launch.actions"),
        "launch.substitutions": types.ModuleType("launch.substitutions"),
        "launch_ros": types.ModuleType("launch_ros"),
        "launch_ros.actions": types.ModuleType("launch_ros.actions"),
    }
    modules["launch"].LaunchDescription = lambda entities: list(entities)
    modules["launch.actions"].DeclareLaunchArgument = type("DeclareLaunchArgument", (_Recorder,), {})
    modules["launch.actions"].OpaqueFunction = type("OpaqueFunction", (_Recorder,), {})
    modules["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    modules["launch_ros.actions"].Node = type("Node", (_Recorder,), {})
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("sim_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_file_starts_the_node_list_with_the_params_file(fake_launch):
    entities = fake_launch.generate_launch_description()
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    assert declared == {arg.name: arg.default for arg in nodes.LAUNCH_ARGUMENTS}
    (opaque,) = [e for e in entities if type(e).__name__ == "OpaqueFunction"]

    values = {**declared, "task": "run", "lockstep": "true", "web_view": "true", "namespace": "robot2"}
    context = types.SimpleNamespace(launch_configurations=values)
    actions = opaque.kwargs["function"](context)
    expected = nodes.stack_nodes(nodes.StackOptions.from_strings(values))
    assert [(a.kwargs["package"], a.kwargs["executable"], a.kwargs["name"]) for a in actions] == \
        [(s.package, s.executable, s.name) for s in expected]
    params_file = str(nodes.config_file(nodes.PARAMS_FILE))
    for action, spec in zip(actions, expected):
        assert action.kwargs["namespace"] == "robot2"
        assert action.kwargs["parameters"][-1] == spec.parameters
        assert (params_file in action.kwargs["parameters"]) == (spec.module is not None)
    planner = next(s for s in expected if s.name == "ezm_planner")
    assert planner.parameters["task"] == "run" and planner.parameters["lockstep"] is True


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
    specs = {s.name: s for s in nodes.stack_nodes(nodes.StackOptions(web_view=True)) if s.module}
    assert {key.removeprefix("/**/") for key in params} == set(specs)
    for key, section in params.items():
        spec = specs[key.removeprefix("/**/")]
        source = Path(importlib.import_module(spec.module).__file__).read_text()
        declared = set(re.findall(r'declare\(\s*(?:self|node),\s*"(\w+)"', source)) | {"use_sim_time"}
        undeclared = set(section["ros__parameters"]) - declared
        assert not undeclared, f"{key}: {undeclared} are not parameters of {spec.module}"
        assert set(spec.parameters) <= declared | {"use_sim_time"}


def test_colcon_installs_the_launch_file_and_its_config():
    # ezm_ros/setup.py's data_files globs, relative to ezm_ros/ as colcon runs it.
    launch = glob(str(REPO / "ezm_ros" / "../launch/*.launch.py"))
    config_dir = REPO / "ezm_ros" / "../launch/config"
    config = glob(str(config_dir / "*.yaml")) + glob(str(config_dir / "*.rviz"))
    assert [Path(p).name for p in launch] == ["sim.launch.py"]
    assert {Path(p).name for p in config} == {nodes.PARAMS_FILE, nodes.RVIZ_FILE}
