//! Reproducible parameter creation.
//!
//! candle's CPU random generator cannot be seeded, so a `VarBuilder` over a
//! plain `VarMap` initialises differently on every run. [`seeded_var_builder`]
//! returns a builder whose new variables draw from a generator seeded by
//! (run seed, variable name): the same seed gives the same weights whatever
//! order the model creates them in, on every device.

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::init::{FanInOut, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};
use sha2::{Digest, Sha256};

/// A `VarBuilder` that stores new variables in `varmap` (existing ones are
/// returned as they are) and initialises them from `seed` and their name.
pub fn seeded_var_builder(varmap: &VarMap, seed: u64, dtype: DType, device: &Device) -> VarBuilder<'static> {
    let backend: Box<dyn SimpleBackend> = Box::new(SeededVarMap {
        varmap: varmap.clone(),
        seed,
    });
    VarBuilder::from_backend(backend, dtype, device.clone())
}

struct SeededVarMap {
    varmap: VarMap,
    seed: u64,
}

fn name_seed(seed: u64, name: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(name.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Host-side draw of an initial value; the result is uploaded once.
fn init_values(init: Init, shape: &Shape, rng: &mut StdRng) -> Result<Vec<f32>> {
    let n = shape.elem_count();
    let normal = |mean: f64, std: f64, rng: &mut StdRng| -> Result<Vec<f32>> {
        let d = Normal::new(mean, std).map_err(|e| candle_core::Error::Msg(format!("init: {e}")))?;
        Ok((0..n).map(|_| d.sample(rng) as f32).collect())
    };
    let uniform = |lo: f64, up: f64, rng: &mut StdRng| -> Result<Vec<f32>> {
        if lo >= up {
            return Ok(vec![lo as f32; n]);
        }
        let d = Uniform::new(lo, up).map_err(|e| candle_core::Error::Msg(format!("init: {e}")))?;
        Ok((0..n).map(|_| d.sample(rng) as f32).collect())
    };
    match init {
        Init::Const(c) => Ok(vec![c as f32; n]),
        Init::Randn { mean, stdev } => normal(mean, stdev, rng),
        Init::Uniform { lo, up } => uniform(lo, up, rng),
        Init::Kaiming { dist, fan, non_linearity } => {
            let fan: FanInOut = fan;
            let fan = fan.for_shape(shape);
            let std = non_linearity.gain() / (fan.max(1) as f64).sqrt();
            match dist {
                NormalOrUniform::Normal => normal(0.0, std, rng),
                NormalOrUniform::Uniform => {
                    let b = 3f64.sqrt() * std;
                    uniform(-b, b, rng)
                }
            }
        }
    }
}

impl SimpleBackend for SeededVarMap {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("var map lock poisoned".into()))?;
        if let Some(v) = data.get(name) {
            let t = v.as_tensor();
            if t.shape() != &s {
                candle_core::bail!("variable {name}: shape {:?} does not match {:?}", t.shape(), s);
            }
            return t.to_dtype(dtype);
        }
        let mut rng = StdRng::seed_from_u64(name_seed(self.seed, name));
        let values = init_values(h, &s, &mut rng)?;
        let t = Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&t)?;
        let out = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(out)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, _dev: &Device) -> Result<Tensor> {
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("var map lock poisoned".into()))?;
        match data.get(name) {
            Some(v) => v.as_tensor().to_dtype(dtype),
            None => candle_core::bail!("no variable named {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap.data().lock().map(|d| d.contains_key(name)).unwrap_or(false)
    }
}

/// The variables of `varmap` sorted by name (a `VarMap` iterates in hash order).
pub fn sorted_vars(varmap: &VarMap) -> Result<Vec<(String, Var)>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("var map lock poisoned".into()))?;
    let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}
