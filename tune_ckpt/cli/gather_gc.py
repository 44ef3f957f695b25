"""``tune-ckpt gc``: the leftovers of interrupted writes swept from every trial folder, and
the leases of dead drivers removed."""

from __future__ import annotations

from tune_ckpt import journal
from tune_ckpt.cli.gather import CLI_RETRY, CliError, Doc, experiments_at, resolve
from tune_ckpt.config import StorageRetry
from tune_ckpt.references import live_references
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.lease import LeaseInfo, read_leases
from tune_ckpt.storage.location import StorageLocation


def _lease_doc(experiment: StorageLocation, lease: LeaseInfo) -> Doc:
    return {"experiment": experiment.uri(), "path": experiment.uri(lease.name), **lease.to_json()}


def gc(
    path: str, dry_run: bool = False, force: bool = False, retry: StorageRetry = CLI_RETRY
) -> Doc:
    """``gc PATH``: sweep the leftovers of interrupted writes from every trial folder.

    Refuses (CliError) an experiment whose driver holds a live lease, unless ``force``:
    while a driver runs, its temporary folders are writes in progress, not leftovers. A
    dry run never refuses; it lists such experiments under "running". Stale leases (their
    driver died) are removed, live ones only with ``force``. A checkpoint folder without a
    manifest that the journal records as committed is kept (listed under "kept") unless
    ``force``: its manifest was lost, and the folder may be all that is left of it.
    """
    location = resolve(path, retry)
    experiments = experiments_at(location)
    # Checked for all before touching any, so a refusal changes nothing.
    leases = {e.uri(): read_leases(e) for e in experiments}
    running = [
        _lease_doc(e, lease)
        for e in experiments
        for lease in leases[e.uri()]
        if not lease.is_stale()
    ]
    if running and not force and not dry_run:
        first = running[0]
        others = f" (and {len(running) - 1} more)" if len(running) > 1 else ""
        holder = next(lease for lease in leases[first["experiment"]] if not lease.is_stale())
        raise CliError(
            f"{first['experiment']}{others} is being run by a live driver: "
            f"{holder.holder()}, lease {holder.name}. Its temporary folders are writes in "
            "progress, not leftovers. If no driver runs it, wait until its heartbeat is "
            f"older than {holder.timeout_s:g} s, or pass --force"
        )
    removed: list[Doc] = []
    published: list[Doc] = []
    kept: list[Doc] = []
    stale_markers: list[Doc] = []
    for experiment in experiments:
        _, trials = journal.load(experiment)
        store = CheckpointStore(experiment)
        # Any trial's records count: a PBT exploiter's may point into its donor's folder.
        live = live_references(trials.values())
        for trial in trials.values():
            keep = () if force else live
            report = store.sweep_report(trial.trial_dir, dry_run=dry_run, keep=keep)
            where = {"experiment": experiment.uri(), "trial_id": trial.trial_id}
            removed += [{**where, "path": experiment.uri(r)} for r in report.removed]
            kept += [{**where, "path": experiment.uri(r)} for r in report.kept]
            published += [
                {**where, "from": experiment.uri(source), "to": experiment.uri(target)}
                for source, target in report.published
            ]
        # After the sweep: had it failed, the lease would still say the run is unclean.
        for lease in leases[experiment.uri()]:
            if not (force or lease.is_stale()):
                continue
            if not dry_run:
                experiment.delete_file(lease.name)
            stale_markers.append(_lease_doc(experiment, lease))
    return {
        "kind": "gc",
        "path": location.uri(),
        "dry_run": dry_run,
        "removed": removed,
        "published": published,
        "kept": kept,
        "markers": stale_markers,
        "running": [] if force else running,
    }
