"""`ros2 launch ezm_ros sim.launch.py [model:=DIR] [task:=walk] [lockstep:=false] [seed:=0] [rviz:=true]
[web_view:=false] [namespace:=NAME]`: the H1 simulator, the latent planner and their visualization.

The nodes, their parameters and these launch arguments all come from `ezm_ros.nodes`, the one node
list that `ezm-sim` also starts (where no ROS 2 install is present); parameters come from
`config/sim.params.yaml` beside this file, with the launch arguments on top.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ezm_ros import nodes


def _stack(context):
    """Resolve the launch arguments, then turn the node list into launch_ros Node actions."""
    values = {arg.name: LaunchConfiguration(arg.name).perform(context) for arg in nodes.LAUNCH_ARGUMENTS}
    options = nodes.StackOptions.from_strings(values)
    params_file = str(nodes.config_file(nodes.PARAMS_FILE))
    return [
        Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            namespace=options.namespace or None,
            parameters=([params_file] if spec.module is not None else []) + [spec.parameters],
            arguments=list(spec.arguments),
            output="screen",
        )
        for spec in nodes.stack_nodes(options)
    ]


def generate_launch_description():
    arguments = [DeclareLaunchArgument(arg.name, default_value=arg.default, description=arg.description)
                 for arg in nodes.LAUNCH_ARGUMENTS]
    return LaunchDescription([*arguments, OpaqueFunction(function=_stack)])
