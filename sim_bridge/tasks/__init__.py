"""HumanoidBench's h1 tasks: `base.Task` is the contract; one module per task family."""
