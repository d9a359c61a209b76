"""The download as a QgsTask: it runs in QGIS's task manager (progress and cancel in the status bar), and its
outcome comes back on the main thread through `done`."""

from __future__ import annotations

from collections.abc import Callable

from qgis.core import QgsTask

from .client import AccessError, Cancelled, NotVisibleError, PluginError
from .download import Fetch, download
from .subset import DownloadPlan


class DownloadTask(QgsTask):
    def __init__(
        self,
        plan: DownloadPlan,
        fetch: Fetch,
        path: str,
        metadata: dict[str, str],
        done: Callable[[DownloadTask], None],
    ) -> None:
        super().__init__(
            f"Cubeport: downloading {plan.cube_id} {plan.variable} ({plan.shape[0]} time steps)",
            QgsTask.CanCancel,
        )
        self.plan, self.fetch, self.path, self.metadata = plan, fetch, path, metadata
        self.done = done
        self.error: PluginError | None = None

    def run(self, attempts: int = 2) -> bool:
        """The download; once more after a failure (a dropped connection, a server restart)."""
        for _ in range(attempts):
            try:
                download(self.plan, self.fetch, self.path, progress=self._progress, metadata=self.metadata)
                self.error = None
                return True
            except (Cancelled, NotVisibleError, AccessError) as exc:  # another try would end the same
                self.error = exc
                return False
            except PluginError as exc:
                self.error = exc
            except Exception as exc:  # noqa: BLE001 (a task must not raise: the user reads a message instead)
                self.error = PluginError(f"The download failed: {exc}")
        return False

    def _progress(self, fraction: float) -> bool:
        self.setProgress(100.0 * fraction)
        return not self.isCanceled()

    def finished(self, result: bool) -> None:  # on the main thread
        if not result and self.error is None:
            self.error = Cancelled("The download was cancelled.")
        self.done(self)
