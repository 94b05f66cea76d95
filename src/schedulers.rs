//! `--shard auto`: the shard index and count from the batch scheduler that started the process,
//! so one manifest runs every shard of a sweep: Kubernetes Indexed Jobs
//! (`JOB_COMPLETION_INDEX`, 0-based; the count is the Job's `completions`, given as `--shards`),
//! Slurm job arrays (`SLURM_ARRAY_TASK_ID` from `SLURM_ARRAY_TASK_MIN` in steps of
//! `SLURM_ARRAY_TASK_STEP`, `SLURM_ARRAY_TASK_COUNT` tasks) and Nomad (`NOMAD_ALLOC_INDEX`,
//! 0-based; the group's count as `--shards`). Examples in `examples/`.

/// The 0-based shard index and the shard count, read through `env` (the process environment,
/// or a table in tests). `count` is `--shards`.
pub(crate) fn shard_from_env(
    count: Option<u32>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(u32, u32), String> {
    let num = |name: &str| -> Result<Option<u64>, String> {
        match env(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("--shard auto: {name}={v:?} is not a number")),
        }
    };
    let (index, n, from) = if let Some(i) = num("JOB_COMPLETION_INDEX")? {
        (i, count.map(u64::from), "JOB_COMPLETION_INDEX (Kubernetes)")
    } else if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let tasks = num("SLURM_ARRAY_TASK_COUNT")?;
        if id < min || (id - min) % step != 0 {
            return Err(format!(
                "--shard auto: SLURM_ARRAY_TASK_ID {id} is not in the array (from {min} in steps of {step})"
            ));
        }
        let n = match (tasks, count) {
            (Some(t), Some(c)) if t != u64::from(c) => {
                return Err(format!(
                    "--shard auto: --shards {c} disagrees with SLURM_ARRAY_TASK_COUNT {t}"
                ))
            }
            (Some(t), _) => Some(t),
            (None, c) => c.map(u64::from),
        };
        ((id - min) / step, n, "SLURM_ARRAY_TASK_ID (Slurm)")
    } else if let Some(i) = num("NOMAD_ALLOC_INDEX")? {
        (i, count.map(u64::from), "NOMAD_ALLOC_INDEX (Nomad)")
    } else {
        return Err("--shard auto: no scheduler index in the environment (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID or NOMAD_ALLOC_INDEX)".into());
    };
    let Some(n) = n else {
        return Err(format!(
            "--shard auto: {from} gives the index but not the count; add --shards N"
        ));
    };
    if n == 0 || n > 65_536 {
        return Err(format!("--shard auto: {n} shards (1 to 65536)"));
    }
    if index >= n {
        return Err(format!(
            "--shard auto: index {index} from {from} is not below the shard count {n}"
        ));
    }
    Ok((index as u32, n as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)], count: Option<u32>) -> Result<(u32, u32), String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        shard_from_env(count, &|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn each_scheduler_names_its_shard() {
        assert_eq!(with(&[("JOB_COMPLETION_INDEX", "2")], Some(8)), Ok((2, 8)));
        assert_eq!(with(&[("NOMAD_ALLOC_INDEX", "0")], Some(3)), Ok((0, 3)));
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ];
        assert_eq!(with(&slurm, None), Ok((4, 8)));
        assert_eq!(with(&slurm, Some(8)), Ok((4, 8)));
        // --array=0-14:2: ids 0, 2, ..., 14.
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ];
        assert_eq!(with(&stepped, None), Ok((3, 8)));
    }

    #[test]
    fn what_is_missing_or_wrong_is_named() {
        let e = with(&[], Some(4)).unwrap_err();
        assert!(e.contains("no scheduler index"), "{e}");
        let e = with(&[("JOB_COMPLETION_INDEX", "1")], None).unwrap_err();
        assert!(e.contains("add --shards N"), "{e}");
        let e = with(&[("JOB_COMPLETION_INDEX", "4")], Some(4)).unwrap_err();
        assert!(e.contains("not below the shard count 4"), "{e}");
        let e = with(&[("NOMAD_ALLOC_INDEX", "x")], Some(4)).unwrap_err();
        assert!(e.contains("is not a number"), "{e}");
        let e = with(
            &[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "8"),
            ],
            Some(4),
        )
        .unwrap_err();
        assert!(e.contains("disagrees"), "{e}");
        let e = with(
            &[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_MIN", "0"),
                ("SLURM_ARRAY_TASK_STEP", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ],
            None,
        )
        .unwrap_err();
        assert!(e.contains("not in the array"), "{e}");
    }
}
