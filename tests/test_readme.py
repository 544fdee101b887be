"""The README's example runs as written and learns something."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_examples_run_and_fit():
    namespace = {}
    for block in _python_blocks():
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["loss"].item() < 0.02
    assert namespace["model"].num_parameters() == 2 * 16 + 16 + 16 + 1


def test_readme_keeps_exactly_two_setup_commands():
    text = README.read_text()
    start = text.index("## Set up")
    setup = text[start:text.index("\n## ", start + 1)]
    commands = re.findall(r"```bash\n(.*?)```", setup, flags=re.S)
    assert [c.strip() for c in commands] == ['pip install ".[data]" && nnlite train mnist1d-cnn',
                                             'pip install ".[test]" && pytest']
