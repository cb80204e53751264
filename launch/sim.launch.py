"""`ros2 launch ezm_ros sim.launch.py [model:=DIR] [task:=walk] [lockstep:=false] [seed:=0] [rviz:=true]
[web_view:=false] [namespace:=NAME] [publish_clock:=true] [record:=false] [safety:=false]`: the H1 simulator,
the latent planner and their visualization; record:=true adds the flight recorder (every topic to an MCAP
file), safety:=true the safety layer and mode machine between the planner and the simulator.

The nodes, their parameters and these launch arguments all come from `ezm_ros.nodes`, the one node
list that `ezm-sim` also starts (where no ROS 2 install is present); parameters come from
`config/sim.params.yaml` beside this file, with the launch arguments on top.

Behaviour: the simulator and the planner are essential, so when either exits (a model that cannot be
loaded ends the planner with a message) the launch shuts everything down and says which one ended it;
a viewer that exits ends only itself. rviz:=true where rviz2 is not installed skips it with a warning
(the rest of the stack runs; web_view:=true serves the same scene in a browser). Ctrl-C (SIGINT) stops
every node. The launch needs sim_bridge installed beside ezm_ros: it starts the simulator.
"""

from ament_index_python.packages import PackageNotFoundError, get_package_prefix
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ezm_ros import nodes


def _installed(package: str) -> bool:
    try:
        get_package_prefix(package)
    except PackageNotFoundError:
        return False
    return True


def _stack(context):
    """Resolve the launch arguments, then turn the node list into launch_ros Node actions."""
    values = {arg.name: LaunchConfiguration(arg.name).perform(context) for arg in nodes.LAUNCH_ARGUMENTS}
    options = nodes.StackOptions.from_strings(values)
    params_file = str(nodes.config_file(nodes.PARAMS_FILE))
    actions = []
    for spec in nodes.stack_nodes(options):
        if not _installed(spec.package):
            if spec.essential:
                raise RuntimeError(f"package {spec.package} is not installed: it provides {spec.executable}")
            actions.append(LogInfo(msg=f"WARNING: {spec.package} is not installed; starting the stack without "
                                   f"{spec.executable} (web_view:=true shows the scene in a browser)"))
            continue
        actions.append(Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            namespace=options.namespace or None,
            parameters=([params_file] if spec.module is not None else []) + [spec.parameters],
            arguments=list(spec.arguments),
            remappings=list(spec.remappings),
            output="screen",
            on_exit=[Shutdown(reason=f"{spec.name} exited")] if spec.essential else None,
        ))
    return actions


def generate_launch_description():
    arguments = [DeclareLaunchArgument(arg.name, default_value=arg.default, description=arg.description)
                 for arg in nodes.LAUNCH_ARGUMENTS]
    return LaunchDescription([*arguments, OpaqueFunction(function=_stack)])
