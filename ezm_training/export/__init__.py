"""From a trained WorldModel to the model bundle the robot runs (`ezm-export`; the format is
`ezm_ros.manifest`, the robot's loader `ezm_ros.bundle`). One module per job:

    robot.py   the robot and each task's observation layout, read from sim_bridge's compiled MuJoCo models,
               and a few recorded steps of each task as real inputs for the parity check
    graphs.py  the two inference graphs as ONNX (one dynamic batch axis, every other dim a number)
    parity.py  onnxruntime against torch on random and recorded inputs, every task (parity.npz)
    int8.py    the optional int8 graphs, their error and the search's agreement with float32
    bundle.py  export_bundle: the steps in order, the manifest, the atomic rename into place
"""


class ExportError(RuntimeError):
    """The model cannot be exported as asked; the message says why."""
