//! Taking part in an exercise (docs/drills.md). A drill daemon is a second agencyd beside the
//! live one, with `[drill] id` in its configuration and a data folder of its own. It can
//! never mix the two: its store is marked with the drill's id at first start (a live store,
//! or another drill's, is refused), and every time it reaches the broker it checks that the
//! broker serves that very drill (a live daemon likewise refuses a drill's broker). Every
//! alert it stores carries the drill's id, so that every screen and sink shows EXERCISE.

use deconfliction_proto::v1;

use super::store::{Batch, LAST_ALERT_SEQ, Store, StoreError};

/// Where a store records the drill it belongs to (absent: live).
const DRILL_KEY: &[u8] = b"m/drill";

/// Binds the store to the drill the configuration names (or to the live federation).
pub fn bind_store(store: &Store, drill: Option<&str>, folder: &str) -> Result<(), String> {
    let io = |e: StoreError| format!("data folder {folder}: {e}");
    let recorded: Option<String> = store.get(DRILL_KEY).map_err(io)?;
    match (recorded.as_deref(), drill) {
        (None, None) => Ok(()),
        (Some(have), Some(want)) if have == want => Ok(()),
        (None, Some(want)) => {
            let fresh = store.ops().map_err(io)?.is_empty()
                && store.get_u64(LAST_ALERT_SEQ).map_err(io)? == 0;
            if !fresh {
                return Err(format!(
                    "data folder {folder} holds live operations or alerts: drill {want} needs a \
                     data folder of its own ([daemon] data_dir)"
                ));
            }
            let _writer = store.write_lock();
            let mut batch = Batch::default();
            batch
                .put(DRILL_KEY.to_vec(), &want.to_owned())
                .map_err(io)?;
            store.apply(batch).map_err(io)?;
            Ok(())
        }
        (Some(have), None) => Err(format!(
            "data folder {folder} belongs to drill {have}: the live agencyd needs its own data \
             folder (or add [drill] id = \"{have}\" if this is the drill's daemon)"
        )),
        (Some(have), Some(want)) => Err(format!(
            "data folder {folder} belongs to drill {have}, not to drill {want}: give each \
             drill a new data folder"
        )),
    }
}

/// Whether the broker serves what this daemon takes part in: the drill it names, or (with
/// no `[drill]`) the live federation.
pub fn check_federation(
    drill: Option<&str>,
    info: &v1::FederationInfo,
    address: &str,
) -> Result<(), String> {
    let served = info.drill.as_ref().map(|d| d.drill_id.as_str());
    match (drill, served) {
        (None, None) => Ok(()),
        (Some(want), Some(have)) if want == have => Ok(()),
        (None, Some(have)) => Err(format!(
            "broker {address} serves drill {have}, an exercise, and this agencyd is configured \
             for the live federation: it will send nothing there. To take part in the drill, \
             run a second agencyd with [drill] id = \"{have}\" and a data folder of its own"
        )),
        (Some(want), None) => Err(format!(
            "this agencyd is configured for drill {want}, but broker {address} is the live \
             federation: it will send nothing there. Set [broker] address to the drill's port"
        )),
        (Some(want), Some(have)) => Err(format!(
            "this agencyd is configured for drill {want}, but broker {address} serves drill \
             {have}"
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn info(drill: Option<&str>) -> v1::FederationInfo {
        v1::FederationInfo {
            drill: drill.map(|id| v1::DrillInfo {
                drill_id: id.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn live_and_drill_never_meet() {
        assert!(check_federation(None, &info(None), "b:1").is_ok());
        assert!(check_federation(Some("d1"), &info(Some("d1")), "b:1").is_ok());
        let e = check_federation(None, &info(Some("d1")), "b:1").unwrap_err();
        assert!(e.contains("[drill] id = \"d1\""), "{e}");
        let e = check_federation(Some("d1"), &info(None), "b:1").unwrap_err();
        assert!(e.contains("live federation"), "{e}");
        assert!(check_federation(Some("d1"), &info(Some("d2")), "b:1").is_err());
    }

    #[test]
    fn a_store_belongs_to_one_federation() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        bind_store(&store, Some("d1"), "x").unwrap();
        bind_store(&store, Some("d1"), "x").unwrap();
        assert!(
            bind_store(&store, None, "x")
                .unwrap_err()
                .contains("belongs to drill d1")
        );
        assert!(
            bind_store(&store, Some("d2"), "x")
                .unwrap_err()
                .contains("not to drill d2")
        );
    }
}
