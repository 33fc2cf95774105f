"""Publish a saved multi-task model on the Hugging Face Hub in one commit: the checkpoint, a model card and,
optionally, every task as a stock transformers model in ``tasks/<task>/``.

The token is left to ``huggingface_hub`` (``HF_TOKEN``, or ``hf auth login``) unless one is passed; this module
never prints, logs or writes it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import CommitInfo, HfApi
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled
from huggingface_hub.utils import validate_repo_id

from .errors import ExportError, HubError
from .evaluation.reports import EVAL_RESULTS_FILE, read_eval_results
from .export import export_task, require_new_directory
from .model_card import EXPORTS_FOLDER, build_model_card
from .modeling.saved import load_saved_config, load_saved_model
from .training.checkpoint import atomic_directory
from .training.stage import RECIPE_FILE

logger = logging.getLogger(__name__)

CARD_FILE = "README.md"
DEFAULT_COMMIT_MESSAGE = "Upload multi-task model with mtl-nlp"


def _copy_checkpoint(model_dir: Path, folder: Path) -> None:
    """Copy the files of ``model_dir`` into ``folder``; say what is left out (sub-folders, an old card)."""
    left_out = []
    for entry in sorted(model_dir.iterdir()):
        if entry.is_file() and entry.name != CARD_FILE:
            shutil.copy2(entry, folder / entry.name)
        else:
            left_out.append(entry.name)
    if left_out:
        logger.warning("Not uploaded from %s: %s (only its files; the card is new).", model_dir, ", ".join(left_out))


def prepare_upload(model_dir: str | Path, folder: str | Path, repo_id: str, *, export_tasks: bool = False) -> list[str]:
    """Write into ``folder`` (new or empty) exactly what :func:`push_to_hub` uploads; return its files.

    ``folder`` gets the files of ``model_dir`` (weights, config, tokenizer, recipe, final evaluations), a model
    card as ``README.md`` and, with ``export_tasks``, each task as a stock model in ``tasks/<task>/``. It
    appears complete or not at all.
    """
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ExportError(f"repository id {repo_id!r}: {error} Write it as 'namespace/name'.") from None
    model_dir, folder = Path(model_dir), require_new_directory(folder)
    config = load_saved_config(model_dir)
    recipe = model_dir / RECIPE_FILE
    recipe_text = recipe.read_text(encoding="utf-8") if recipe.exists() else None
    evaluations = read_eval_results(model_dir)
    for missing, name in ((recipe_text, RECIPE_FILE), (evaluations, EVAL_RESULTS_FILE)):
        if missing is None:
            logger.warning("%s has no %s; the model card goes without it.", model_dir, name)
    exported = list(config.tasks) if export_tasks else []
    with atomic_directory(folder) as staging:
        _copy_checkpoint(model_dir, staging)
        if exported:
            model, tokenizer = load_saved_model(model_dir)
            for task in exported:
                export_task(model, task, staging / EXPORTS_FOLDER / task, tokenizer)
        build_model_card(config, repo_id, evaluations, recipe_text, exported).save(staging / CARD_FILE)
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def push_to_hub(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    export_tasks: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
) -> CommitInfo:
    """Upload the multi-task model in ``model_dir`` to ``repo_id`` in one commit (see :func:`prepare_upload`).

    The repository is created if missing (``private`` applies only then), and ``revision``, a branch, is created
    from ``main`` if missing. ``token`` defaults to what ``huggingface_hub`` finds (``HF_TOKEN`` or the login).
    """
    with tempfile.TemporaryDirectory(prefix="mtl-nlp-upload-") as folder:
        files = prepare_upload(model_dir, folder, repo_id, export_tasks=export_tasks)
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            logger.info("Uploading %d files to %s in one commit.", len(files), repo_id)
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                revision=revision,
                commit_message=commit_message or DEFAULT_COMMIT_MESSAGE,
            )
        except (HfHubHTTPError, OfflineModeIsEnabled) as error:
            raise HubError(
                f"{repo_id}: the upload failed ({error}). Check the repository id, the network, and that you are "
                "logged in with write access (`hf auth login`, or the HF_TOKEN environment variable)."
            ) from None
