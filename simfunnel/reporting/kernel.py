"""The kernel that executes reports: started early, warm, and reused across a batch.

Starting an IPython kernel and importing what a report's notebook imports (simfunnel,
pandas, matplotlib, scipy) costs a few seconds, about as much as the cells of a small
report. A :class:`ReportKernel` pays that once per batch, and hides most of it:

- it is launched first, and imports the notebook's modules while it boots, so the
  command checks the parameters and loads papermill at the same time (two processes);
- before each report, :meth:`ReportKernel.prepare` moves it into the report's folder
  and, from the second report on, puts back what a notebook may change: the namespace
  and history (execution counts start at 1 again), warnings filters, environment
  variables, ``sys.path``, matplotlib's rc settings and open figures, pandas'
  options, numpy's error and print settings;
- after a failed report (a cell raised, or the kernel died) it is replaced by a fresh
  kernel, so nothing of the failure reaches the next report.

Modules stay imported (that is the saving), so state no reset can undo carries over
from one report to the next: a module attribute a notebook reassigns, a ``%config``
setting, a module of the same name imported from another report's folder. The bundled
notebooks do none of these; for a notebook of one's own that does, give every report
its own kernel (``run_batch(..., kernel_per_report=True)``,
``simfunnel report --kernel-per-report``).
"""

from __future__ import annotations

import ast
import json
import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

#: The kernel logs a harmless "KeyboardInterrupt caught in kernel" error when it
#: is shut down: keep its own log to critical messages (cell errors still show).
QUIET = ["--IPKernelApp.log_level=CRITICAL"]

#: nbclient's log of a run (e.g. "Kernel died while waiting for execute reply"): what
#: matters reaches the user as the report's one-line error, so nothing is printed.
LOG = logging.getLogger(__name__)
LOG.addHandler(logging.NullHandler())

#: Seconds a kernel may take to start, its warm-up imports included, or to reset.
START_TIMEOUT = 120

# Run by the kernel while it boots: import each module a notebook imports, as
# ``from name import attr`` would (an attribute that is a submodule is imported too).
# Nothing lands in the notebook's namespace, and a module that fails to import is
# left for the notebook to report.
_WARM = """\
def _simfunnel_warm(modules):
    import importlib
    for name, attrs in modules:
        try:
            module = importlib.import_module(name)
        except Exception:
            continue
        for attr in attrs:
            if not hasattr(module, attr):
                try:
                    importlib.import_module(name + "." + attr)
                except Exception:
                    pass
_simfunnel_warm({modules!r})
del _simfunnel_warm
"""

# Run before each report. The first time, it records what the kernel holds after its
# start-up imports (what a fresh kernel gives a notebook); later, it puts that back.
# (IPython's namespace reset runs a full garbage collection, 0.1-0.2 s: only later.)
_PREPARE = """\
def _simfunnel_prepare(folder):
    import os
    import sys
    import warnings

    shell = get_ipython()
    base = getattr(shell, "_simfunnel_baseline", None)
    mpl = sys.modules.get("matplotlib")
    np = sys.modules.get("numpy")
    if base is None:
        base = {{
            "filters": list(warnings.filters),
            "environ": dict(os.environ),
            "path": list(sys.path),
            "rc": mpl.rcParams.copy() if mpl else None,
            "np": (np.geterr(), np.get_printoptions()) if np else None,
            "ns": {{k: v for k, v in shell.user_ns.items() if k != "_simfunnel_prepare"}},
        }}
        shell._simfunnel_baseline = base
    else:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")
        if mpl and base["rc"] is not None:
            mpl.rcParams.update(base["rc"])
        elif mpl:  # imported by an earlier report: its defaults, backend kept
            mpl.rc_file_defaults()
        if "pandas" in sys.modules:
            with warnings.catch_warnings():  # resetting deprecated options warns
                warnings.simplefilter("ignore")
                sys.modules["pandas"].reset_option("all")
        if np and base["np"] is not None:
            np.seterr(**base["np"][0])
            np.set_printoptions(**base["np"][1])
        warnings.resetwarnings()  # also forgets warnings already shown once
        warnings.filters[:] = base["filters"]
        for key in set(os.environ) - set(base["environ"]):
            del os.environ[key]
        os.environ.update(base["environ"])
        sys.path[:] = base["path"]
        shell.reset(new_session=True)  # namespace, history and execution count
        for key, value in base["ns"].items():  # what reset leaves out (__doc__, _...)
            shell.user_ns.setdefault(key, value)
    os.chdir(folder)
_simfunnel_prepare({folder!r})
globals().pop("_simfunnel_prepare", None)  # a fresh kernel's namespace: nothing to reset
"""


def notebook_imports(path: str | Path) -> list[tuple[str, tuple[str, ...]]]:
    """The modules a notebook's code cells import at their top level.

    ``import a.b`` gives ``("a.b", ())`` and ``from a import b, c`` gives
    ``("a", ("b", "c"))``. Lines of IPython magics are skipped; a cell that is not
    Python (a cell magic) is left out.
    """
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    found: dict[str, set[str]] = {}
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.setdefault(alias.name, set())
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = {a.name for a in node.names if a.name != "*"}
                found.setdefault(node.module, set()).update(names)
    return [(module, tuple(sorted(names))) for module, names in found.items()]


class KernelFailed(RuntimeError):
    """The kernel died or did not answer in time."""


class ReportKernel:
    """An IPython kernel for reports, launched at once and reused report after report.

    Use as a context manager; the kernel is shut down on leaving. ``warm`` lists the
    modules to import while it boots (:func:`notebook_imports` of the notebook).
    """

    def __init__(self, warm: list[tuple[str, tuple[str, ...]]] | None = None) -> None:
        self._warm = list(warm or [])
        self._folder = Path(tempfile.mkdtemp(prefix="simfunnel-kernel-"))
        self.km: Any = None
        self.kc: Any = None
        self._ready = False
        self._launch()

    def __enter__(self) -> ReportKernel:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
        shutil.rmtree(self._folder, ignore_errors=True)

    def _launch(self) -> None:
        from jupyter_core.utils import run_sync
        from traitlets.config import Config

        # IPC sockets in a private folder: nothing listens on the network, and the
        # kernel has no reason to warn about unencrypted TCP.
        config = Config()
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(self._folder / "k")
        km = quiet_kernel_manager()(kernel_name="python3", config=config)
        args = [*QUIET, "--HistoryManager.hist_file=:memory:"]  # as nbclient starts one
        if self._warm:
            args.append(f"--IPKernelApp.exec_lines={_WARM.format(modules=self._warm)}")
        run_sync(km.start_kernel)(extra_arguments=args, cwd=str(self._folder))
        kc = km.client()
        kc.allow_stdin = False  # input() in a cell fails at once instead of waiting
        kc.start_channels()
        self.km, self.kc, self._ready = km, kc, False

    def prepare(self, folder: str | Path) -> None:
        """Reset the kernel for the next report and move it into ``folder``.

        Raises
        ------
        KernelFailed
            The kernel died, or did not answer within :data:`START_TIMEOUT` seconds.
        """
        from jupyter_core.utils import run_sync

        if self.km is None:  # replaced after a failure
            self._launch()
        try:
            if not self._ready:
                run_sync(self._until_ready)()
                self._ready = True
            reply = run_sync(self.kc.execute_interactive)(
                _PREPARE.format(folder=str(Path(folder).resolve())),
                silent=True,
                store_history=False,
                timeout=START_TIMEOUT,
                output_hook=lambda msg: None,
            )
        except (RuntimeError, TimeoutError) as exc:
            raise KernelFailed(f"the notebook kernel did not start or answer: {exc}") from None
        content = reply["content"]
        if content.get("status") != "ok":
            raise KernelFailed(
                f"the notebook kernel could not be reset: {content.get('ename')}: "
                f"{content.get('evalue')}"
            )

    async def _until_ready(self) -> None:
        """jupyter_client's ``wait_for_ready`` without its last 0.2 s wait on IOPub.

        A kernel_info reply on the shell channel, then a message on IOPub (the status
        the kernel publishes around that request), show both channels connected. The
        messages left on IOPub answer earlier requests, which every reader of a reply
        skips (papermill's client and :meth:`prepare` match replies to requests).
        """
        from queue import Empty

        from jupyter_core.utils import ensure_async

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self.kc.kernel_info()
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=1))
            except Empty:
                pass
            else:
                if msg["msg_type"] == "kernel_info_reply":
                    try:
                        await ensure_async(self.kc.iopub_channel.get_msg(timeout=0.2))
                    except Empty:
                        pass
                    else:
                        return
            if not await ensure_async(self.km.is_alive()):
                raise RuntimeError("the kernel died before it answered")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no answer in {START_TIMEOUT} s")

    def release(self) -> None:
        """Kill the kernel's process without waiting for it: no report needs it any more.

        Called once the last report's cells have run; :meth:`shutdown` then finds the
        process gone instead of polling it every 0.1 s (jupyter_client's wait).
        """
        from jupyter_core.utils import run_sync

        if self.km is not None and self.km.provisioner is not None:
            run_sync(self.km.provisioner.kill)()

    def replace(self) -> None:
        """Shut the kernel down; the next report gets a fresh one (after a failure)."""
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the kernel and close its channels (nothing happens a second time)."""
        from jupyter_core.utils import run_sync

        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None
        if self.km is not None:
            try:
                run_sync(self.km.shutdown_kernel)(now=True)
            except RuntimeError:  # already gone
                pass
            run_sync(self.km.cleanup_resources)()
            self.km = None


def quiet_kernel_manager() -> type:
    """A kernel manager whose kernel writes nothing on the command's stderr.

    A kernel stopped after a failed cell may still log a tornado traceback from its
    control channel, whatever its log level; the user's one-line error must stay one
    line. Cell errors and outputs travel as messages, not on the kernel's stderr.
    """
    global _QUIET_MANAGER
    if _QUIET_MANAGER is None:
        from jupyter_client.manager import AsyncKernelManager

        class QuietKernelManager(AsyncKernelManager):
            async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
                kw.setdefault("stderr", subprocess.DEVNULL)
                await super()._async_launch_kernel(kernel_cmd, **kw)

        _QUIET_MANAGER = QuietKernelManager
    return _QUIET_MANAGER


_QUIET_MANAGER: type | None = None


def papermill_engine() -> str:
    """The name of a papermill engine that runs a notebook on a :class:`ReportKernel`.

    papermill's own engine starts a kernel for each notebook and shuts it down after;
    this one takes the running kernel and its client as they are, and leaves them up.
    """
    global _ENGINE
    if _ENGINE is None:
        from papermill.clientwrap import PapermillNotebookClient
        from papermill.engines import NBClientEngine, papermill_engines

        class RunningKernelEngine(NBClientEngine):
            @classmethod
            def execute_managed_notebook(
                cls,
                nb_man: Any,
                kernel_name: str,
                log_output: bool = False,
                stdout_file: Any = None,
                stderr_file: Any = None,
                start_timeout: int = START_TIMEOUT,
                kernel: ReportKernel | None = None,
                **kwargs: Any,
            ) -> Any:
                assert kernel is not None
                client = PapermillNotebookClient(
                    nb_man,
                    km=kernel.km,
                    kernel_name=kernel_name,
                    log=LOG,
                    log_output=log_output,
                    stdout_file=stdout_file,
                    stderr_file=stderr_file,
                    startup_timeout=start_timeout,
                    timeout=None,
                )
                client.kc = kernel.kc
                return client.execute()

        papermill_engines.register("simfunnel-report-kernel", RunningKernelEngine)
        _ENGINE = "simfunnel-report-kernel"
    return _ENGINE


_ENGINE: str | None = None
