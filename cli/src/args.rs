//! The `pocketrec` command line's arguments (clap): one struct or variant a command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use pocketrec::builder::Layout;
use pocketrec::{ListRows, Scoring, ValueEncoding};
use pocketrec_export::storage::{BoundsChoice, ItemStorage, Target, UserRows};
use pocketrec_train::data::{Format, ReadOptions};
use pocketrec_train::loss::LossKind;
use pocketrec_train::mask::Regrow;
use pocketrec_train::{MaskInit, TrainOptions, default_threads};

use crate::commands::demo::DemoOptions;
use crate::commands::generate::Structure;

/// pocketrec: sparse recommendation embeddings, small enough for phones and microcontrollers.
#[derive(Debug, Parser)]
#[command(name = "pocketrec", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a .prec model from trained user and item tables (npy, npz, scipy sparse npz,
    /// safetensors).
    Export(Box<ExportArgs>),
    /// Show what a model holds and what each part costs; or, for a patch, what it changes and
    /// how big it is against the file it makes.
    Inspect {
        /// The model file (or patch file).
        model: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also draw bytes by section, non-zeros per row and density per dimension (item
        /// table) into this SVG file.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Check every byte of a model (checksums, rows, ids), or the form of a patch; with --key,
    /// also its signature. Exit status 0: valid; 1: invalid (or unsigned, wrong key, tampered);
    /// 2: unreadable.
    Verify {
        /// The model file (or patch file).
        model: PathBuf,
        /// A public key file (`pocketrec keygen`): the file must be signed by it.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Write the patch that turns OLD into NEW (rows that changed, were added or removed),
    /// for an over-the-air update; `pocketrec patch` (or the runtime, on the device) applies it.
    Diff {
        /// The model the device has.
        old: PathBuf,
        /// The model it should have.
        new: PathBuf,
        /// The patch file to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Apply a patch to OLD and write the result atomically (a crash leaves OUTPUT as it was,
    /// or complete). OUTPUT may be OLD itself.
    Patch {
        /// The model the patch was made for.
        old: PathBuf,
        /// The patch (`pocketrec diff`).
        patch: PathBuf,
        /// The file to write.
        #[arg(short, long)]
        output: PathBuf,
        /// A public key file: the patch must be signed by it.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Make an Ed25519 key pair for signing models and patches: PREFIX.key (secret, mode 0600)
    /// and PREFIX.pub (for apps).
    Keygen {
        /// Path prefix of the two key files.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Sign a model or a patch with a secret key (an Ed25519 signature over its SHA-256, in a
    /// trailer that readers skip and `verify --key` checks).
    Sign {
        /// The model or patch file.
        file: PathBuf,
        /// The secret key file (`pocketrec keygen`).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signed file [default: in place].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Print the top-k items for a user, or for every user of a file.
    Recommend(RecommendArgs),
    /// Train sparse (or dense) embeddings from an interaction log and write a .prec model.
    Train(Box<TrainArgs>),
    /// The recall-for-bytes frontier of trained models: a Markdown table (and an SVG plot) of
    /// Recall@20 and NDCG@20 against file bytes, from `train --test ... --json` summaries.
    Frontier {
        /// `train --json` summaries (runs with --test).
        #[arg(required = true)]
        summaries: Vec<PathBuf>,
        /// Also draw Recall@20 and NDCG@20 against file bytes into this SVG file.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Only the files with these value encodings (comma-separated) [default: all].
        #[arg(long, value_delimiter = ',')]
        values: Vec<String>,
    },
    /// Full-ranking Recall@k and NDCG@k of a model, through the runtime's own recommend.
    Eval(EvalArgs),
    /// Train a sparse and a dense model on a built-in interaction set, export them, and show
    /// sizes, Recall@20 and recommendations.
    Demo(DemoArgs),
    /// Write random sparse tables as users.npy and items.npy, for benchmarks and experiments:
    /// i.i.d. normal values at a density, or tables with a trained model's structure.
    Generate {
        /// Directory to write into.
        #[arg(short, long)]
        output: PathBuf,
        /// User rows.
        #[arg(long, default_value_t = 1_000)]
        users: usize,
        /// Item rows.
        #[arg(long, default_value_t = 1_000_000)]
        items: usize,
        /// Dimension.
        #[arg(long, default_value_t = 64)]
        dim: usize,
        /// Probability that an entry is non-zero.
        #[arg(long, default_value_t = 0.1)]
        density: f64,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// What the tables look like: `normal` (every entry independently non-zero with
        /// probability --density, standard normal values: no structure, every row and
        /// dimension alike) or `structured` (fitted to a Gowalla-trained model: taste clusters
        /// of Zipf sizes sharing their strong dimensions, item norms growing with a Pareto
        /// popularity, non-zeros uneven over the dimensions, then pruned by magnitude to
        /// exactly --density; see docs/BENCHMARKS.md, "Structured tables").
        #[arg(long, value_enum, default_value_t = Structure::Normal)]
        structure: Structure,
        /// Then change this fraction of each table's rows, as an update would (values scaled
        /// by 1 + 0.1 z, every other changed row with one non-zero moved): run twice, with
        /// and without it, for two models to diff.
        #[arg(long)]
        change_rows: Option<f64>,
        /// The seed that picks and changes the rows of --change-rows.
        #[arg(long, default_value_t = 1)]
        change_seed: u64,
    },
    /// Write a drifting synthetic interaction log with timestamps (taste clusters whose
    /// popularity drifts, new users and items arriving, users changing tastes): for
    /// `split`, incremental training and its evaluation.
    GenerateLog {
        /// The log to write (`user item rating timestamp`, tab-separated).
        #[arg(short, long)]
        output: PathBuf,
        /// Periods (a week each).
        #[arg(long, default_value_t = pocketrec_train::drift::DriftSpec::default().periods)]
        periods: usize,
        /// Users arriving in the first period.
        #[arg(long, default_value_t = pocketrec_train::drift::DriftSpec::default().users)]
        users: usize,
        /// Items at the start.
        #[arg(long, default_value_t = pocketrec_train::drift::DriftSpec::default().items)]
        items: usize,
        /// Random seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Split an interaction log with timestamps into time-ordered periods, one file each (the
    /// log's lines verbatim, in time order, with its header): to train on the past and test on
    /// what came next, and to update a model period by period.
    Split(SplitArgs),
    /// Time `recommend` on a model, per retrieval path, against the memory bandwidth.
    Bench {
        /// The model file.
        model: PathBuf,
        /// Queries per path (users taken from the model's user table).
        #[arg(long, default_value_t = 200)]
        queries: usize,
        /// Items per query.
        #[arg(short, default_value_t = 20)]
        k: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Flush the CPU caches before each timed query (by reading a buffer of at least 1 GiB
        /// and twice the size of the largest cache), so the model's bytes come from main memory
        /// as on a device whose cache cannot hold the model; the main-memory floor is then the
        /// one to read.
        #[arg(long)]
        cold: bool,
        /// Also draw each path's latency distribution into this SVG file.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Also time another file of the same tables (another layout, encoding or pocketrec
        /// build's output) on the same queries, one query on each file in turn, and print the
        /// ratio of their latencies and how many answers agree.
        #[arg(long, value_name = "OTHER")]
        against: Option<PathBuf>,
    },
}

fn parse_values(s: &str) -> std::result::Result<ValueEncoding, String> {
    ValueEncoding::from_name(s).ok_or_else(|| format!("'{s}' is not one of f32, f16, bf16, i8, i4"))
}

/// `--layout`: a layout, or `auto` (`None`) to choose it from the tables.
fn parse_layout(s: &str) -> std::result::Result<LayoutChoice, String> {
    if s == "auto" {
        return Ok(LayoutChoice(None));
    }
    Layout::from_name(s)
        .map(|l| LayoutChoice(Some(l)))
        .ok_or_else(|| format!("'{s}' is not one of auto, rows, both, columns"))
}

/// `--layout`: `Some` layout, or `None` for `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayoutChoice(pub Option<Layout>);

fn parse_bounds(s: &str) -> std::result::Result<BoundsChoice, String> {
    match s {
        "auto" => Ok(BoundsChoice::Auto),
        "off" | "none" => Ok(BoundsChoice::Off),
        n => match n.parse::<u32>() {
            Ok(rows) if rows.is_power_of_two() && (64..=4096).contains(&rows) => {
                Ok(BoundsChoice::Rows(rows))
            }
            _ => Err(format!(
                "'{s}' is not auto, off, or a power of two from 64 to 4096 (rows per block)"
            )),
        },
    }
}

fn parse_target(s: &str) -> std::result::Result<Target, String> {
    Target::from_name(s).ok_or_else(|| format!("'{s}' is not one of device, mcu"))
}

/// How to store the item table: the options `export` and `train` share.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// How to store the item table: `auto` (chosen from the tables and the target, and
    /// recorded in the file as `layout.chosen_by`: the column layout with block bounds for
    /// item tables of 4,096 rows and more queried by sparse users, row records otherwise),
    /// `rows` (smallest file), `both` (rows plus a column layout, so that queries with sparse
    /// users read only their dimensions' posting lists) or `columns` (the column layout alone:
    /// about the size of `rows`, every query through the posting lists; needs a format 1.2
    /// reader).
    #[arg(long, default_value = "auto", value_parser = parse_layout)]
    pub layout: LayoutChoice,
    /// Block bounds of the item table: `auto` (with a chosen column layout of 4,096 rows and
    /// more: blocks of 64 rows), `off`, or rows per block (64 to 4096, a power of two; needs
    /// a column layout). With bounds the item rows are clustered (items alike stored
    /// together, ids kept through an id index: format 1.5), and a query skips the blocks that
    /// cannot reach its top k; the answers are exactly those of a full scan.
    #[arg(long, default_value = "auto", value_parser = parse_bounds)]
    pub block_bounds: BoundsChoice,
    /// Where the model runs: `device` (phones, tablets, desktops) or `mcu` (a microcontroller
    /// with little RAM: `auto` then keeps row records).
    #[arg(long, default_value = "device", value_parser = parse_target)]
    pub target: Target,
    /// Write the model as an update of this earlier model: with block bounds, item rows keep
    /// its row order (new rows follow), so that `pocketrec diff` from it carries only what
    /// changed. Without it, a few changed rows can move every clustered row after them.
    #[arg(long)]
    pub update_of: Option<PathBuf>,
    /// Write no user rows: every user is folded in on the device from their own interactions
    /// (the file's fold-in section), so the file is the item table alone and the other users'
    /// rows never ship. `auto` then keeps row records (folded-in users are dense); evaluate
    /// such a file with `eval --fold-in`. `export` then needs no user table: `--items` alone
    /// will do (an item table without trained user rows, e.g. a two-tower model's item side).
    #[arg(long)]
    pub items_only: bool,
}

impl StorageArgs {
    /// The exporter's [`ItemStorage`], with `sliced_rows`.
    pub fn storage(&self, sliced_rows: bool) -> ItemStorage {
        ItemStorage {
            layout: self.layout.0,
            sliced_rows,
            block_bounds: self.block_bounds,
            target: self.target,
            user_rows: if self.items_only {
                UserRows::FoldedIn
            } else {
                UserRows::Stored
            },
        }
    }
}

fn parse_list_rows(s: &str) -> std::result::Result<ListRows, String> {
    ListRows::from_name(s).ok_or_else(|| format!("'{s}' is not one of u16, bitmap"))
}

fn parse_scoring(s: &str) -> std::result::Result<Scoring, String> {
    Scoring::from_name(s).ok_or_else(|| format!("'{s}' is not one of dot, cosine"))
}

/// Arguments of `pocketrec export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A safetensors or npz file holding both tables (see --user-tensor, --item-tensor).
    #[arg(conflicts_with_all = ["users", "items"])]
    pub input: Option<PathBuf>,
    /// The user table (npy, npz, scipy sparse npz, safetensors).
    #[arg(long, requires = "items")]
    pub users: Option<PathBuf>,
    /// The item table (with --users, or alone with --items-only).
    #[arg(long)]
    pub items: Option<PathBuf>,
    /// The user tensor's name in the input (default `user_embedding` with a single input file).
    #[arg(long)]
    pub user_tensor: Option<String>,
    /// The item tensor's name in the input (default `item_embedding` with a single input file).
    #[arg(long)]
    pub item_tensor: Option<String>,
    /// The model file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// How to store values: f32 (exact), f16, bf16, i8 or i4 (per-row scale; i4: two values
    /// a byte).
    #[arg(long, default_value = "f32", value_parser = parse_values)]
    pub values: ValueEncoding,
    /// User ids, one per line and row (integers or strings).
    #[arg(long)]
    pub user_ids: Option<PathBuf>,
    /// Item ids, one per line and row.
    #[arg(long)]
    pub item_ids: Option<PathBuf>,
    /// Per-user biases (npy, npz, safetensors, or text with one number per line).
    #[arg(long)]
    pub user_bias: Option<PathBuf>,
    /// Tensor name of the user biases inside --user-bias (npz, safetensors).
    #[arg(long, requires = "user_bias")]
    pub user_bias_tensor: Option<String>,
    /// Per-item biases.
    #[arg(long)]
    pub item_bias: Option<PathBuf>,
    /// Tensor name of the item biases inside --item-bias.
    #[arg(long, requires = "item_bias")]
    pub item_bias_tensor: Option<String>,
    /// Constant added to every score.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub global_bias: f32,
    /// How to score: dot or cosine.
    #[arg(long, default_value = "dot", value_parser = parse_scoring)]
    pub scoring: Scoring,
    /// How to store the item table.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// How the column layout's posting lists name their rows: `u16` (2 bytes per entry,
    /// readable by format 1.1/1.2 readers) or `bitmap` (a bit per row of each block and
    /// dimension, format 1.3: smaller once more than one item in 16 is non-zero in a
    /// dimension, 13 % smaller f32 and 19 % smaller f16 column files at 10 %, but 1.2x slower
    /// queries there; see docs/FORMAT.md).
    #[arg(long, default_value = "u16", value_parser = parse_list_rows)]
    pub list_rows: ListRows,
    /// Store the item rows sliced (format 1.4, needs `--layout rows`, a dimension of at most
    /// 256 and at most 255 non-zeros a row): sixteen rows at a time, a length byte a row
    /// instead of a 4-byte offset, so that the row scan walks them one entry of sixteen rows
    /// per vector step. 1.7x faster f16 row scans with AVX-512 (VBMI2); other CPUs run a
    /// scalar loop (see docs/FORMAT.md, *Sliced rows*).
    #[arg(long)]
    pub sliced_rows: bool,
    /// Keep one row offset per row in tables of bitmap rows (format 1.3), for devices whose
    /// pocketrec reads format 1.6 or older; by default bitmap rows take one offset per 16
    /// rows (format 1.7, 4 bytes a row smaller; see docs/FORMAT.md, *Bitmap rows in blocks*).
    #[arg(long)]
    pub per_row_offsets: bool,
    /// Prune each table by magnitude to this density (0 < D <= 1) before writing.
    #[arg(long)]
    pub prune_density: Option<f64>,
    /// Store string ids as their 64-bit hashes only (by default the file also keeps the
    /// strings, so that answers name users and items as the id files do).
    #[arg(long)]
    pub no_id_strings: bool,
    /// Write no fold-in section (by default the file carries the item Gramian, 2·d·(d+1)
    /// bytes, so that the device can fold in new users from their interactions).
    #[arg(long, conflicts_with_all = ["fold_in_unobserved_weight", "fold_in_regularization"])]
    pub no_fold_in: bool,
    /// Fold-in: the weight of every item as an unobserved target (alpha0 >= 0) [default:
    /// 256 / items, all items together weigh as 256 observed items].
    #[arg(
        long,
        requires = "fold_in_regularization",
        allow_negative_numbers = true
    )]
    pub fold_in_unobserved_weight: Option<f32>,
    /// Fold-in: the ridge (lambda > 0) [default: 1000 times the mean square item value,
    /// 1000 items' weight].
    #[arg(
        long,
        requires = "fold_in_unobserved_weight",
        allow_negative_numbers = true
    )]
    pub fold_in_regularization: Option<f32>,
    /// Fold users in by the softmax loss the tables were trained with (sampled softmax or BSL
    /// on unit vectors), `TEMPERATURE,POWER` (e.g. `0.1,1.2`; POWER 1 for a plain softmax),
    /// instead of the squared-error fold-in: no Gramian; a catalogue summary of
    /// `--fold-in-clusters` clusters.
    #[arg(
        long,
        value_name = "TEMPERATURE,POWER",
        value_parser = parse_softmax_fold_in,
        conflicts_with_all = ["no_fold_in", "fold_in_unobserved_weight"]
    )]
    pub fold_in_softmax: Option<pocketrec::SoftmaxFoldIn>,
    /// Clusters of the softmax fold-in's catalogue summary (0: none, every fold-in step reads
    /// the whole item table; default 128 from 1,024 items, 0 below).
    #[arg(long, value_name = "C", requires = "fold_in_softmax")]
    pub fold_in_clusters: Option<u32>,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `TEMPERATURE,POWER` for `--fold-in-softmax`, checked.
fn parse_softmax_fold_in(text: &str) -> Result<pocketrec::SoftmaxFoldIn, String> {
    let (t, p) = text
        .split_once(',')
        .ok_or_else(|| format!("expected TEMPERATURE,POWER (e.g. 0.1,1.2), got {text:?}"))?;
    let number = |s: &str| {
        s.trim()
            .parse::<f32>()
            .map_err(|e| format!("{s:?} is not a number: {e}"))
    };
    // The clusters are the exporter's to choose (`--fold-in-clusters`, or by the item count).
    let settings = pocketrec::SoftmaxFoldIn::for_loss(number(t)?, number(p)?, 0);
    settings
        .check()
        .map_err(|_| "temperature and power must be finite and above 0".to_string())?;
    Ok(settings)
}

/// Arguments of `pocketrec recommend`.
#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// The model file.
    pub model: PathBuf,
    /// The user's id.
    #[arg(
        long,
        required_unless_present_any = ["users_file", "items"],
        conflicts_with_all = ["users_file", "items"]
    )]
    pub user: Option<String>,
    /// A file of user ids, one per line: prints one JSON line per user.
    #[arg(long, conflicts_with = "items")]
    pub users_file: Option<PathBuf>,
    /// A user given by the items they interacted with (comma-separated ids): folded in on the
    /// spot from the model's fold-in section, then recommended for, those items excluded.
    /// JSON: `{"folded_from": [ID, ...], "unknown": N, "items": [...]}`.
    #[arg(long, value_delimiter = ',')]
    pub items: Vec<String>,
    /// How many items.
    #[arg(short, default_value_t = 20)]
    pub k: usize,
    /// Item ids never to recommend (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Print JSON: `{"user": ID, "items": [{"item": ID, "score": S}, ...]}`.
    #[arg(long)]
    pub json: bool,
}

fn parse_format(s: &str) -> std::result::Result<Format, String> {
    Format::from_name(s).ok_or_else(|| format!("'{s}' is not one of auto, lightgcn, interactions"))
}

fn parse_mask_init(s: &str) -> std::result::Result<MaskInit, String> {
    MaskInit::from_name(s).ok_or_else(|| format!("'{s}' is not one of random, nmf"))
}

fn parse_loss(s: &str) -> std::result::Result<LossKind, String> {
    LossKind::from_name(s).ok_or_else(|| format!("'{s}' is not one of bpr, ssm, bsl, ccl"))
}

fn parse_regrow(s: &str) -> std::result::Result<Regrow, String> {
    Regrow::from_name(s).ok_or_else(|| format!("'{s}' is not one of gradient, accumulated"))
}

/// How interaction files are read (shared by `train` and `eval`).
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// File layout: `lightgcn` (`user item item ...`), `interactions` (`user item [rating]
    /// [timestamp]`, tab/comma/space/`::` separated), or `auto` (tabs, commas or `::` mean
    /// interactions).
    #[arg(long, default_value = "auto", value_parser = parse_format)]
    pub format: Format,
    /// Interaction logs: keep only lines rated at least this.
    #[arg(long)]
    pub min_rating: Option<f64>,
}

impl ReadArgs {
    /// The reader's options.
    pub fn options(&self) -> ReadOptions {
        ReadOptions {
            format: self.format,
            min_rating: self.min_rating,
        }
    }
}

/// Arguments of `pocketrec split`.
#[derive(Debug, Args)]
pub struct SplitArgs {
    /// The interaction log (`user item rating timestamp` per line; timestamps in unix seconds,
    /// unix milliseconds or ISO 8601, one form per file).
    pub log: PathBuf,
    /// The directory to write `period-01.<ext>`, `period-02.<ext>`, ... into (created).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Deal the log into this many periods (see --by).
    #[arg(long, conflicts_with = "until", required_unless_present = "until")]
    pub periods: Option<usize>,
    /// With --periods: `interactions` (equal numbers of interactions; lines at one instant stay
    /// together) or `time` (equal time spans from the first interaction to the last).
    #[arg(long, default_value = "interactions", value_parser = ["interactions", "time"])]
    pub by: String,
    /// Two periods instead: up to and including this time (as the log writes it: unix seconds
    /// or milliseconds, or ISO 8601), and after it.
    #[arg(long)]
    pub until: Option<String>,
    /// How the file is read.
    #[command(flatten)]
    pub read: ReadArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `pocketrec train` (defaults in docs/TRAINING.md).
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training interactions.
    #[arg(long)]
    pub train: PathBuf,
    /// Test interactions: validation during training and an evaluation of the written file.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// The model file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Embedding width [default: 64; with --resume, the checkpoint's].
    #[arg(long)]
    pub dim: Option<usize>,
    /// Fraction of active weights over both tables; 1.0 trains the dense model [default: 0.1;
    /// with --resume, the checkpoint's].
    #[arg(long)]
    pub density: Option<f64>,
    /// Passes over the training interactions.
    /// [default: 40 with bpr; with the cosine losses 80, or 160 for a dense model (--density 1); 20 with --resume]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Also write a checkpoint here: everything `--resume` needs to continue on new
    /// interactions (docs/INCREMENTAL.md).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Continue this checkpoint on --train's interactions (new ones) instead of training from
    /// scratch: new users and items get rows at the end, rows without new interactions stay
    /// as they were; width, loss, density and distillation come from the checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// With --resume: weight of the prior that keeps weights near their previous values,
    /// in proportion to their curvature (0: none) [default: 0].
    #[arg(long)]
    pub prior_strength: Option<f32>,
    /// With --resume: most mask swaps of a sparse model, as a fraction of the active weights of
    /// its earlier rows with new interactions [default: 0.05].
    #[arg(long)]
    pub churn: Option<f64>,
    /// With --resume: dynamic sparse training over the update, in the rows with new
    /// interactions only: the fraction of their active weights that the first mask update
    /// moves, decaying on a cosine (0: the churn swap alone) [default: 0.5].
    #[arg(long)]
    pub mask_fraction: Option<f64>,
    /// With --resume: a log of earlier interactions (the periods so far); those of the users
    /// with new interactions are trained on again beside the new ones.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// With --replay: replay a random sample of them, this many per new interaction (1: as
    /// many as the new log has), instead of all of them.
    #[arg(long, requires = "replay")]
    pub replay_share: Option<f64>,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Initial mask: random (DSL) or nmf (SparseRec).
    #[arg(long, default_value = "nmf", value_parser = parse_mask_init)]
    pub mask_init: MaskInit,
    /// Regrowth by the gradient accumulated since the last update (SparseRec) or of the last
    /// batch (DSL, RigL).
    #[arg(long, default_value = "accumulated", value_parser = parse_regrow)]
    pub regrow: Regrow,
    /// How to store values: f32, f16, bf16, i8 or i4 (per-row scale). A comma-separated list
    /// writes one file per encoding from the same tables: the first to -o, the others to
    /// `<stem>.<encoding>.prec` beside it.
    #[arg(long, default_value = "f32", value_parser = parse_values, value_delimiter = ',')]
    pub values: Vec<ValueEncoding>,
    /// How to store the item table.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The loss: bpr (inner products, one negative per triple), or on cosine scores with
    /// negatives shared by each batch: ssm (sampled softmax), bsl (bilateral softmax), ccl
    /// (cosine contrastive) [default: see docs/TRAINING.md].
    #[arg(long, value_parser = parse_loss)]
    pub loss: Option<LossKind>,
    /// Cosine losses: negatives shared by each batch.
    #[arg(long)]
    pub negatives: Option<usize>,
    /// ssm and bsl: temperature of the softmax.
    #[arg(long)]
    pub temperature: Option<f32>,
    /// bsl: power of the negative term (1: the softmax without the positive in its
    /// denominator).
    #[arg(long)]
    pub bsl_power: Option<f32>,
    /// ccl: margin of the negative scores.
    #[arg(long, allow_negative_numbers = true)]
    pub margin: Option<f32>,
    /// ccl: weight of the negative term.
    #[arg(long)]
    pub negative_weight: Option<f32>,
    /// Pairs (or triples) per step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam's learning rate [default: 0.02 with the cosine losses, bpr 0.005 dense and 0.01
    /// sparse; with --resume, the checkpoint's,
    /// or 4 times it with --replay; an update's --lr scales its dense master's alike].
    #[arg(long)]
    pub lr: Option<f32>,
    /// L2 coefficient on the batch's embeddings [default: 0.01 dense, 0.02 sparse].
    #[arg(long)]
    pub l2: Option<f32>,
    /// Steps between mask updates (0: one update per epoch).
    #[arg(long, default_value_t = TrainOptions::default().update_interval)]
    pub update_interval: u64,
    /// Fraction of the budget moved by the first mask update (decays on a cosine).
    #[arg(long, default_value_t = TrainOptions::default().update_fraction)]
    pub update_fraction: f64,
    /// Fraction of training after which the mask stays fixed.
    #[arg(long, default_value_t = TrainOptions::default().update_end)]
    pub update_end: f64,
    /// Fewest active weights a row keeps through pruning.
    #[arg(long, default_value_t = TrainOptions::default().row_floor)]
    pub row_floor: usize,
    /// Regrowth balance between rows: 0 ranks raw gradients, 1 each row's gradient direction.
    #[arg(long, default_value_t = TrainOptions::default().balance)]
    pub balance: f32,
    /// Pruning balance between rows: 0 prunes the smallest weights overall, 1 the smallest
    /// relative to their row's norm [default: 1 with the cosine losses, 0 with bpr].
    #[arg(long)]
    pub prune_balance: Option<f32>,
    /// Prune and regrow inside each row, so that every row keeps its number of weights.
    #[arg(long)]
    pub per_row: bool,
    /// Learning rate at the end of training, as a fraction of --lr (1: constant) [default: 0.1].
    #[arg(long)]
    pub lr_end: Option<f32>,
    /// Fraction of training after which the learning rate decays on a cosine to --lr-end
    /// [default: 0.5].
    #[arg(long)]
    pub lr_decay_start: Option<f64>,
    /// Adam's bias correction from each weight's own update count (sparse models).
    #[arg(long)]
    pub local_adam: bool,
    /// Standard deviation of the initial weights [default: 0.1].
    #[arg(long)]
    pub init_std: Option<f32>,
    /// Share of the budget given to the user table at the start (0: in proportion to rows).
    #[arg(long)]
    pub user_share: Option<f64>,
    /// Initial budget of a row in proportion to (1 + its degree)^P within its table
    /// [default: 0, the same for every row].
    #[arg(long)]
    pub degree_power: Option<f64>,
    /// Gradual pruning: start at this density (1.0: dense) and prune to --density on a cubic
    /// schedule over the mask updates (Zhu and Gupta 2017) [default: off, the budget is fixed
    /// from the first step].
    #[arg(long)]
    pub start_density: Option<f64>,
    /// How a sparse model reaches --density: dst (dynamic sparse training: the budget from the
    /// first step, pruned and regrown) or lottery (lottery tickets: train dense, prune the
    /// smallest weights, rewind the rest to --rewind-step, retrain; --rounds times).
    #[arg(long, default_value = "dst", value_parser = parse_sparsify)]
    pub sparsify: String,
    /// Lottery tickets: pruning rounds after the dense one (each keeps the same fraction)
    /// [default: 3].
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Lottery tickets: the step whose weights the survivors are rewound to (0: the initial
    /// weights) [default: the end of the first epoch].
    #[arg(long)]
    pub rewind_step: Option<u64>,
    /// Train a sparse model on its own, without distilling the dense model into it (by
    /// default a sparse model is trained after the dense one, which teaches it: better
    /// Recall, 2-3 times the training time).
    #[arg(long)]
    pub no_distill: bool,
    /// Distillation: the dense teacher from this written model (trained with `--density 1.0`
    /// on the same interactions and loss) instead of training it first; several sparse runs
    /// can share one teacher.
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Distillation: weight of the observed label, y = alpha + (1 - alpha) sigmoid(t / tau)
    /// where t is the teacher's score difference (1: plain BPR, 0: the teacher's labels alone)
    /// [default: 0.25].
    #[arg(long)]
    pub distill_alpha: Option<f32>,
    /// Distillation: temperature tau of the teacher's pairwise probability [default: 1].
    #[arg(long)]
    pub distill_temperature: Option<f32>,
    /// Distillation: weight beta of the score-matching term beta/2 (x - t)^2 [default: 0].
    #[arg(long)]
    pub distill_beta: Option<f32>,
    /// Distillation: negatives drawn per triple, keeping the one the teacher scores highest
    /// (1: uniform negatives) [default: 8].
    #[arg(long)]
    pub distill_negatives: Option<usize>,
    /// Worker threads (the result depends on the seed only, not on this).
    #[arg(long, default_value_t = default_threads())]
    pub threads: usize,
    /// Validate on the test set every this many epochs (0: never).
    #[arg(long, default_value_t = 10)]
    pub eval_every: usize,
    /// Users drawn for validation (0: all test users).
    #[arg(long, default_value_t = 4000)]
    pub eval_users: usize,
    /// Cut-off of Recall@k and NDCG@k.
    #[arg(short, default_value_t = 20)]
    pub k: usize,
    /// Skip the evaluation of the written file at the end.
    #[arg(long)]
    pub no_final_eval: bool,
    /// Keep this fraction of the users (drawn with the seed) out of training entirely, so
    /// that `eval --fold-in` can fold them in as new users.
    #[arg(long, default_value_t = 0.0)]
    pub holdout_users: f64,
    /// Write no fold-in section (by default the files carry the item Gramian and the fold-in
    /// settings of `export`, scaled to the trained item table).
    #[arg(long, conflicts_with_all = ["fold_in_unobserved_weight", "fold_in_regularization"])]
    pub no_fold_in: bool,
    /// Fold-in: this unobserved weight (alpha0 >= 0) instead of the default.
    #[arg(
        long,
        requires = "fold_in_regularization",
        allow_negative_numbers = true
    )]
    pub fold_in_unobserved_weight: Option<f32>,
    /// Fold-in: this ridge (lambda > 0) instead of the default.
    #[arg(
        long,
        requires = "fold_in_unobserved_weight",
        allow_negative_numbers = true
    )]
    pub fold_in_regularization: Option<f32>,
    /// Fold-in: choose the settings on these validation interactions (held out of --train,
    /// e.g. by bench/split_validation.py; same format): users are folded in from their
    /// training items and tested on these. The squared-error fold-in (BPR, CCL) tries 5
    /// unobserved weights × 4 ridges; the softmax one (SSM, BSL) 5 temperatures × 2 powers in
    /// units of the loss's (1, 1.4, 1.7, 2, 2.5 × τ; 1, 1.5 × the power).
    #[arg(long, conflicts_with_all = ["no_fold_in", "fold_in_unobserved_weight"])]
    pub fold_in_validation: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub read: ReadArgs,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar or per-epoch lines.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Arguments of `pocketrec eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model file.
    pub model: PathBuf,
    /// Training interactions (excluded from each user's ranking).
    #[arg(long)]
    pub train: PathBuf,
    /// Test interactions.
    #[arg(long)]
    pub test: PathBuf,
    /// Cut-off.
    #[arg(short, default_value_t = 20)]
    pub k: usize,
    /// Worker threads.
    #[arg(long, default_value_t = default_threads())]
    pub threads: usize,
    /// Fold each test user in from their training items (the model's fold-in section)
    /// instead of reading their row; users without a row are evaluated as new users, folded
    /// in from half of their interactions and tested on the other half, beside a popularity
    /// ranking.
    #[arg(long)]
    pub fold_in: bool,
    /// Also draw Recall@k by user activity into this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub read: ReadArgs,
    /// Print one JSON object: `{"k": 20, "users": N, "recall@20": R, "ndcg@20": N, ...}`.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Arguments of `pocketrec demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the generated files in this directory (default: a temporary one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Users to generate.
    #[arg(long, default_value_t = DemoOptions::default().users)]
    pub users: usize,
    /// Items to generate.
    #[arg(long, default_value_t = DemoOptions::default().items)]
    pub items: usize,
    /// Embedding width.
    #[arg(long, default_value_t = DemoOptions::default().dim)]
    pub dim: usize,
    /// Density of the sparse model.
    #[arg(long, default_value_t = DemoOptions::default().density)]
    pub density: f64,
    /// Training epochs (both models).
    #[arg(long, default_value_t = DemoOptions::default().epochs)]
    pub epochs: usize,
    /// Worker threads.
    #[arg(long, default_value_t = default_threads())]
    pub threads: usize,
}

/// Accepts `dst` or `lottery` for `--sparsify`.
fn parse_sparsify(name: &str) -> Result<String, String> {
    match name {
        "dst" | "lottery" => Ok(name.to_string()),
        other => Err(format!("expected dst or lottery, got {other:?}")),
    }
}
