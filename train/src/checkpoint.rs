//! Checkpoints (`train --checkpoint`, `train --resume`): everything needed to continue training
//! on new interactions, in one safetensors file (`docs/INCREMENTAL.md`, *Checkpoints*).
//!
//! Tensors, for the model (`model.`) and, for a sparse model, its dense master (`master.`),
//! each table (`users`, `items`) holds:
//!
//! | tensor | dtype | shape | what |
//! | --- | --- | --- | --- |
//! | `<p>.<t>.w` | F32 | rows x dim | weights (zero outside the mask) |
//! | `<p>.<t>.m`, `<p>.<t>.v` | F32 | rows x dim | Adam's moments |
//! | `<p>.<t>.curvature` | F32 | rows x dim | the prior's curvature: `v` over its mean (0 where `v` is) |
//! | `<p>.<t>.mask` | U8 | rows x dim | sparse tables: 1 active, 0 not |
//! | `<p>.<t>.acc` | F32 | rows x dim | sparse tables: the regrowth accumulator |
//!
//! and `users.ids`, `items.ids` (U64, one per row: the external ids in row order), with
//! `users.strings`, `items.strings` (U8: the original strings joined by newlines) for string
//! ids. The one metadata entry, `pocketrec`, is a JSON object `{"info": TEXT, "crc32c": N}`:
//! `TEXT` is the JSON of [`CheckpointInfo`] and `N` its CRC-32C. The info holds format and
//! version, the settings a resumed run must share (width, loss, density, distillation), step
//! counts, the number of updates so far and the seed, and a CRC-32C of every tensor's bytes.
//! Reading checks the structure, every tensor's dtype, shape and checksum, that weights are
//! finite and zero outside the mask, and that ids are unique: a truncated, corrupt or
//! mismatched checkpoint is refused with a message, never a panic. Written atomically and
//! deterministically (the same state gives the same bytes).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use pocketrec::IdKind;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::data::IdSpace;
use crate::error::{Result, TrainError};
use crate::loss::{LossConfig, LossKind};
use crate::model::{DistillConfig, Table};
use crate::trainer::RawState;

/// The `format` of a checkpoint's metadata.
pub const FORMAT: &str = "pocketrec-checkpoint";

/// The version this code writes and reads.
pub const VERSION: u32 = 1;

/// The checkpoint's metadata entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// Embedding width.
    pub dim: usize,
    /// The loss and its settings.
    pub loss: LossInfo,
    /// Fraction of active weights of the model (1: dense, no master).
    pub density: f64,
    /// Adam's learning rate and L2 of the model's training.
    pub lr: f32,
    /// L2 coefficient.
    pub l2: f32,
    /// Sparse models: the distillation from the master (`None`: none).
    pub distill: Option<DistillInfo>,
    /// Sparse models: the pruning balance between rows (the masks' scores).
    pub prune_balance: f32,
    /// Standard deviation of new rows' initial weights.
    pub init_std: f32,
    /// The seed of the first run.
    pub seed: u64,
    /// Updates (`--resume` runs) since the first training.
    pub updates: u64,
    /// Interactions trained on, over the first run and every update.
    pub interactions: u64,
    /// Adam steps of the model.
    pub model_steps: u64,
    /// Adam steps of the master (sparse models).
    pub master_steps: Option<u64>,
    /// `integer` or `string` user ids.
    pub user_ids: String,
    /// `integer` or `string` item ids.
    pub item_ids: String,
    /// CRC-32C of each tensor's bytes, by name.
    pub crc32c: BTreeMap<String, u32>,
}

/// The metadata entry as stored: the info's JSON text and its CRC-32C.
#[derive(Serialize, Deserialize)]
struct Envelope {
    info: String,
    crc32c: u32,
}

/// A loss as a checkpoint records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossInfo {
    /// `bpr`, `bsl`, `ssm` or `ccl`.
    pub kind: String,
    /// Shared negatives per batch.
    pub negatives: usize,
    /// Temperature.
    pub temperature: f32,
    /// BSL's power.
    pub power: f32,
    /// CCL's margin.
    pub margin: f32,
    /// CCL's negative weight.
    pub negative_weight: f32,
}

impl LossInfo {
    /// The record of `loss`.
    pub fn of(loss: &LossConfig) -> Self {
        LossInfo {
            kind: loss.kind.name().to_string(),
            negatives: loss.negatives,
            temperature: loss.temperature,
            power: loss.power,
            margin: loss.margin,
            negative_weight: loss.negative_weight,
        }
    }

    /// The loss it records, or `None` for an unknown kind.
    pub fn config(&self) -> Option<LossConfig> {
        let kind = LossKind::from_name(&self.kind)?;
        Some(LossConfig {
            kind,
            negatives: self.negatives,
            temperature: self.temperature,
            power: self.power,
            margin: self.margin,
            negative_weight: self.negative_weight,
        })
    }
}

/// Distillation settings as a checkpoint records them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DistillInfo {
    /// Weight of the observed label.
    pub alpha: f32,
    /// Temperature.
    pub temperature: f32,
    /// Score matching.
    pub beta: f32,
    /// Negatives per triple (BPR).
    pub negatives: usize,
}

impl From<DistillConfig> for DistillInfo {
    fn from(d: DistillConfig) -> Self {
        DistillInfo {
            alpha: d.alpha,
            temperature: d.temperature,
            beta: d.beta,
            negatives: d.negatives,
        }
    }
}

impl From<DistillInfo> for DistillConfig {
    fn from(d: DistillInfo) -> Self {
        DistillConfig {
            alpha: d.alpha,
            temperature: d.temperature,
            beta: d.beta,
            negatives: d.negatives,
        }
    }
}

/// A training state: the model, its master, the ids and the record.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The metadata (its `crc32c` is filled in when written).
    pub info: CheckpointInfo,
    /// User ids in row order.
    pub users: IdSpace,
    /// Item ids in row order.
    pub items: IdSpace,
    /// The model: the sparse student, or the dense model itself at density 1.
    pub model: RawState,
    /// Sparse models: the dense master they are derived from and distilled from.
    pub master: Option<RawState>,
}

/// `v` over the mean of its non-zero values (0 where `v` is 0): a diagonal curvature estimate
/// of mean 1 (Adam's second moment is a running mean of squared gradients, an empirical Fisher
/// estimate).
pub fn curvature(v: &[f32]) -> Vec<f32> {
    let (sum, n) = v
        .iter()
        .filter(|&&x| x > 0.0)
        .fold((0.0f64, 0usize), |(s, n), &x| (s + f64::from(x), n + 1));
    if n == 0 {
        return vec![0.0; v.len()];
    }
    let mean = sum / n as f64;
    v.iter().map(|&x| (f64::from(x) / mean) as f32).collect()
}

fn kind_name(kind: IdKind) -> &'static str {
    match kind {
        IdKind::Integer => "integer",
        _ => "string",
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The tensors of one table, by name.
fn table_tensors(prefix: &str, table: &Table, out: &mut Vec<(String, Dtype, Vec<u8>)>) {
    let name = |part: &str| format!("{prefix}.{part}");
    out.push((name("w"), Dtype::F32, f32_bytes(&table.w)));
    out.push((name("m"), Dtype::F32, f32_bytes(&table.m)));
    out.push((name("v"), Dtype::F32, f32_bytes(&table.v)));
    out.push((
        name("curvature"),
        Dtype::F32,
        f32_bytes(&curvature(&table.v)),
    ));
    if let Some(active) = &table.active {
        out.push((name("mask"), Dtype::U8, active.clone()));
    }
    if let Some(acc) = &table.acc {
        out.push((name("acc"), Dtype::F32, f32_bytes(acc)));
    }
}

/// Serialises a checkpoint (deterministically: the same state gives the same bytes).
pub fn to_bytes(checkpoint: &Checkpoint) -> Result<Vec<u8>> {
    let mut tensors: Vec<(String, Dtype, Vec<u8>)> = Vec::new();
    let states = [
        ("model", Some(&checkpoint.model)),
        ("master", checkpoint.master.as_ref()),
    ];
    for (prefix, state) in states {
        if let Some(state) = state {
            table_tensors(&format!("{prefix}.users"), &state.users, &mut tensors);
            table_tensors(&format!("{prefix}.items"), &state.items, &mut tensors);
        }
    }
    for (name, ids) in [("users", &checkpoint.users), ("items", &checkpoint.items)] {
        let bytes = ids.ids.iter().flat_map(|x| x.to_le_bytes()).collect();
        tensors.push((format!("{name}.ids"), Dtype::U64, bytes));
        if let Some(strings) = &ids.strings {
            tensors.push((
                format!("{name}.strings"),
                Dtype::U8,
                strings.join("\n").into_bytes(),
            ));
        }
    }
    let mut info = checkpoint.info.clone();
    info.crc32c = tensors
        .iter()
        .map(|(name, _, bytes)| (name.clone(), pocketrec::format::crc32c(bytes)))
        .collect();
    let dim = checkpoint.info.dim;
    let views = tensors
        .iter()
        .map(|(name, dtype, bytes)| {
            let shape = match dtype {
                Dtype::U64 => vec![bytes.len() / 8],
                Dtype::U8 if name.ends_with(".strings") => vec![bytes.len()],
                Dtype::U8 => vec![bytes.len() / dim, dim],
                _ => vec![bytes.len() / 4 / dim, dim],
            };
            TensorView::new(*dtype, shape, bytes).map(|view| (name.clone(), view))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| TrainError::Options(format!("cannot encode the checkpoint: {e}")))?;
    let text = serde_json::to_string(&info)
        .map_err(|e| TrainError::Options(format!("cannot encode the checkpoint: {e}")))?;
    let envelope = Envelope {
        crc32c: pocketrec::format::crc32c(text.as_bytes()),
        info: text,
    };
    let json = serde_json::to_string(&envelope)
        .map_err(|e| TrainError::Options(format!("cannot encode the checkpoint: {e}")))?;
    let metadata = HashMap::from([("pocketrec".to_string(), json)]);
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| TrainError::Options(format!("cannot encode the checkpoint: {e}")))
}

/// Writes a checkpoint atomically (temporary file, fsync, rename).
pub fn write(path: &Path, checkpoint: &Checkpoint) -> Result<()> {
    let bytes = to_bytes(checkpoint)?;
    pocketrec_export::atomic::write_atomic(path, &bytes).map_err(|e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: format!("cannot write: {e}"),
    })
}

/// Reads and checks a checkpoint (see the module docs).
pub fn read(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    from_bytes(path, &bytes)
}

/// [`read`] on bytes in memory (`path` is for messages).
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    let fail = |message: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| {
        fail(format!(
            "not a checkpoint (safetensors: {e}); truncated or damaged?"
        ))
    })?;
    let tensors = SafeTensors::deserialize(bytes)
        .map_err(|e| fail(format!("damaged checkpoint (safetensors: {e})")))?;
    let json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get("pocketrec"))
        .ok_or_else(|| fail("a safetensors file, but not a pocketrec checkpoint".into()))?;
    let envelope: Envelope = serde_json::from_str(json)
        .map_err(|e| fail(format!("damaged checkpoint metadata: {e}")))?;
    if pocketrec::format::crc32c(envelope.info.as_bytes()) != envelope.crc32c {
        return Err(fail(
            "its metadata fails its checksum: the file is damaged".into(),
        ));
    }
    let info: CheckpointInfo = serde_json::from_str(&envelope.info)
        .map_err(|e| fail(format!("damaged checkpoint metadata: {e}")))?;
    if info.format != FORMAT || info.version != VERSION {
        return Err(fail(format!(
            "{} version {} is not a checkpoint this version reads ({FORMAT} version {VERSION})",
            info.format, info.version
        )));
    }
    if info.dim == 0 || info.dim > pocketrec::MAX_STACK_DIM {
        return Err(fail(format!("width {} out of range", info.dim)));
    }
    if info.loss.config().is_none() {
        return Err(fail(format!("unknown loss {:?}", info.loss.kind)));
    }
    let dim = info.dim;
    let names: HashSet<&str> = tensors.names().into_iter().collect();
    let expected: HashSet<&str> = info.crc32c.keys().map(String::as_str).collect();
    if names != expected {
        return Err(fail(
            "its tensors are not those its metadata lists; damaged?".into(),
        ));
    }
    // Every tensor's checksum, those the state is rebuilt from and the others (curvature).
    for (name, &crc) in &info.crc32c {
        let view = tensors
            .tensor(name)
            .map_err(|_| fail(format!("no tensor {name}")))?;
        if pocketrec::format::crc32c(view.data()) != crc {
            return Err(fail(format!(
                "tensor {name} fails its checksum: the file is damaged"
            )));
        }
    }
    let tensor = |name: &str, dtype: Dtype| -> Result<&[u8]> {
        let view = tensors
            .tensor(name)
            .map_err(|_| fail(format!("no tensor {name}")))?;
        if view.dtype() != dtype {
            return Err(fail(format!(
                "tensor {name} is {:?}, expected {dtype:?}",
                view.dtype()
            )));
        }
        Ok(view.data())
    };
    let ids = |what: &str, kind: &str| -> Result<IdSpace> {
        let data = tensor(&format!("{what}.ids"), Dtype::U64)?;
        let ids: Vec<u64> = data
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        let unique: HashSet<u64> = ids.iter().copied().collect();
        if unique.len() != ids.len() {
            return Err(fail(format!("{what} ids repeat")));
        }
        let (kind, strings) = match kind {
            "integer" => (IdKind::Integer, None),
            "string" => {
                let text = std::str::from_utf8(tensor(&format!("{what}.strings"), Dtype::U8)?)
                    .map_err(|_| fail(format!("{what}.strings is not UTF-8")))?;
                let strings: Vec<String> = if ids.is_empty() {
                    Vec::new()
                } else {
                    text.split('\n').map(str::to_string).collect()
                };
                if strings.len() != ids.len()
                    || strings
                        .iter()
                        .zip(&ids)
                        .any(|(s, &id)| pocketrec::string_id(s) != id)
                {
                    return Err(fail(format!("{what}.strings do not match {what}.ids")));
                }
                (IdKind::StringHash, Some(strings))
            }
            other => return Err(fail(format!("unknown id kind {other:?}"))),
        };
        Ok(IdSpace { ids, kind, strings })
    };
    let users = ids("users", &info.user_ids)?;
    let items = ids("items", &info.item_ids)?;
    let floats = |name: &str, rows: usize| -> Result<Vec<f32>> {
        let data = tensor(name, Dtype::F32)?;
        if data.len() != rows * dim * 4 {
            return Err(fail(format!(
                "tensor {name} holds {} values, expected {rows} x {dim}",
                data.len() / 4
            )));
        }
        let values: Vec<f32> = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        if let Some(k) = values.iter().position(|x| !x.is_finite()) {
            return Err(fail(format!(
                "tensor {name} has a non-finite value at row {}, column {}",
                k / dim,
                k % dim
            )));
        }
        Ok(values)
    };
    let table = |prefix: &str, rows: usize, sparse: bool| -> Result<Table> {
        let mut table = Table::dense(rows, dim, floats(&format!("{prefix}.w"), rows)?);
        table.m = floats(&format!("{prefix}.m"), rows)?;
        table.v = floats(&format!("{prefix}.v"), rows)?;
        if sparse {
            let name = format!("{prefix}.mask");
            let mask = tensor(&name, Dtype::U8)?.to_vec();
            if mask.len() != rows * dim || mask.iter().any(|&a| a > 1) {
                return Err(fail(format!(
                    "tensor {name} is not a 0/1 mask of {rows} x {dim}"
                )));
            }
            if let Some(k) = (0..mask.len()).find(|&k| mask[k] == 0 && table.w[k] != 0.0) {
                return Err(fail(format!(
                    "{prefix} row {} has a weight outside its mask at column {}",
                    k / dim,
                    k % dim
                )));
            }
            let acc_name = format!("{prefix}.acc");
            let acc = if names.contains(acc_name.as_str()) {
                floats(&acc_name, rows)?
            } else {
                vec![0.0; rows * dim]
            };
            table = table.with_mask(mask);
            table.acc = Some(acc);
        }
        Ok(table)
    };
    let sparse = info.density < 1.0;
    let model = RawState {
        users: table("model.users", users.len(), sparse)?,
        items: table("model.items", items.len(), sparse)?,
        steps: info.model_steps,
    };
    let master = match (sparse, info.master_steps) {
        (false, _) => None,
        (true, Some(steps)) => Some(RawState {
            users: table("master.users", users.len(), false)?,
            items: table("master.items", items.len(), false)?,
            steps,
        }),
        (true, None) => {
            return Err(fail(
                "a sparse model's checkpoint without its master".into(),
            ));
        }
    };
    Ok(Checkpoint {
        info,
        users,
        items,
        model,
        master,
    })
}

/// The metadata of a new checkpoint for a trained model's settings (checksums filled in when
/// written).
pub fn info_for(options: &crate::TrainOptions, users: &IdSpace, items: &IdSpace) -> CheckpointInfo {
    CheckpointInfo {
        format: FORMAT.into(),
        version: VERSION,
        dim: options.dim,
        loss: LossInfo::of(&options.loss),
        density: options.density,
        lr: options.step.lr,
        l2: options.step.l2,
        distill: options.distill.map(DistillInfo::from),
        prune_balance: options.prune_balance,
        init_std: options.init_std,
        seed: options.seed,
        updates: 0,
        interactions: 0,
        model_steps: 0,
        master_steps: None,
        user_ids: kind_name(users.kind).into(),
        item_ids: kind_name(items.kind).into(),
        crc32c: BTreeMap::new(),
    }
}
