"""The rollout video `ezm-sim` writes on exit, rendered from the state topics it recorded.

Rendering during the run would cost 25-75 ms of a core per frame under software GL (docs/sim_bridge.md),
more than the 20 ms control period, and would compete with the simulator and the planner. So the
recorder keeps the scene's generalised coordinates (a few hundred bytes per frame) while the stack runs,
and the frames are rendered once the nodes have stopped, with sim_bridge's own renderer and camera.
"""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path
from typing import Final

import numpy as np

from ezm_msgs.msg import TaskState
from ezm_ros.conversions import RobotCoordinates

#: Video frame rate; every other 50 Hz state is kept.
VIDEO_FPS: Final = 25
FRAME_SIZE_PX: Final = (480, 360)
#: What rendering costs here (2 cores, software GL), to tell the user how long the exit will take.
RENDER_S_PER_FRAME: Final = 0.14


@dataclasses.dataclass(frozen=True)
class Frame:
    task: str
    qpos: np.ndarray  # the whole scene: robot, then objects
    task_values: dict[str, object]  # points and internal state, to restore the reach goal or maze stage


class RolloutRecorder:
    """Keeps the last `max_seconds` of states at VIDEO_FPS (sim time decides which states are kept)."""

    def __init__(self, max_seconds: float) -> None:
        self._frames: collections.deque[Frame] = collections.deque(maxlen=max(1, int(max_seconds * VIDEO_FPS)))
        self._next_ns = 0

    def add(self, stamp_ns: int, robot: RobotCoordinates, task_state: TaskState) -> None:
        if stamp_ns < self._next_ns and self._frames:
            if stamp_ns + 10**9 < self._next_ns:  # the clock went back (a new simulator): start over
                self._next_ns = stamp_ns
            else:
                return
        self._next_ns = stamp_ns + 10**9 // VIDEO_FPS
        values: dict[str, object] = {name: np.array([p.x, p.y, p.z]) for name, p in
                                     zip(task_state.point_names, task_state.points)}
        values.update({kv.key: kv.value for kv in task_state.internal_state})
        qpos = np.concatenate([robot.qpos, np.asarray(task_state.object_qpos, dtype=np.float64)])
        self._frames.append(Frame(task_state.task, qpos, values))

    def __len__(self) -> int:
        return len(self._frames)

    def write(self, path: Path) -> int:
        """Render the recorded frames to an H.264 MP4 at `path`, or, for a `.gif` path, to a looping GIF at
        half size and half rate (small enough to sit in a README); returns the number of frames."""
        import imageio.v2 as imageio

        import sim_bridge
        from sim_bridge import registry
        from sim_bridge.h1 import constants

        if not self._frames:
            return 0
        path.parent.mkdir(parents=True, exist_ok=True)
        width, height = FRAME_SIZE_PX
        gif = path.suffix.lower() == ".gif"
        if gif:  # every second frame, at half the size: 12.5 fps, 240 x 180
            writer = imageio.get_writer(path, mode="I", duration=2000 / VIDEO_FPS, loop=0)
        else:
            writer = imageio.get_writer(path, fps=VIDEO_FPS, codec="libx264", macro_block_size=1)
        env, task = None, None
        try:
            for index, frame in enumerate(self._frames):
                if gif and index % 2:
                    continue
                if frame.task != task:
                    if env is not None:
                        env.close()
                    env = sim_bridge.make(registry.env_id(constants.ROBOT_NAME, frame.task), render_mode="rgb_array",
                                          width=width, height=height).unwrapped
                    env.reset(seed=0)
                    task = frame.task
                if frame.qpos.shape != (env.model.nq,):
                    continue  # a state from before a scene change
                _restore_task_state(env, frame.task_values)
                env.set_state(frame.qpos, np.zeros(env.model.nv))
                image = env.render()
                writer.append_data(image[::2, ::2] if gif else image)
        finally:
            writer.close()
            if env is not None:
                env.close()
        return len(self._frames)


def _restore_task_state(env, values: dict[str, object]) -> None:
    """Reach's goal (a point) and the maze's stage (internal state), so the picture shows them."""
    current = env.task_state
    restored = {}
    for key, value in current.items():
        if key in values:
            restored[key] = np.asarray(values[key]) if isinstance(value, np.ndarray) else type(value)(values[key])
    if restored:
        env.task_state = restored
