//! Labels of any kind (integers, strings) to class ids 0..k. Readers intern each distinct label as
//! they meet it ([`Coder::code`]); [`Coder::finish`] then orders the classes as scikit-learn's
//! `LabelEncoder` does (numerically when every label is a number, else as strings) and renumbers
//! the codes, so labels 0..9 stay class ids 0..9 and their names are "0".."9".

use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct Coder {
    index: HashMap<String, u32>,
    names: Vec<String>,
    /// The names came already in class order (see [`Coder::ordered`]).
    fixed: bool,
}

/// The classes, in class-id order, and the map from a reader's codes to class ids.
#[derive(Debug, Clone)]
pub struct Classes {
    pub names: Vec<String>,
    /// `remap[code]` is the class id of the label first met as `code`.
    pub remap: Vec<u32>,
}

impl Coder {
    pub fn new() -> Self {
        Self::default()
    }
    /// The code of `label` (the order in which labels were first met).
    pub fn code(&mut self, label: &str) -> u32 {
        if let Some(&c) = self.index.get(label) {
            return c;
        }
        let c = self.names.len() as u32;
        self.index.insert(label.to_string(), c);
        self.names.push(label.to_string());
        c
    }
    /// Classes already numbered by the caller, in class-id order (the Python package hands over
    /// numpy's `np.unique` order, which its `classes_` keeps): [`Coder::finish`] keeps it.
    pub fn ordered(names: Vec<String>) -> Self {
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        Coder {
            index,
            names,
            fixed: true,
        }
    }
    /// The code of an integer label.
    pub fn code_int(&mut self, v: i64) -> u32 {
        self.code(&v.to_string())
    }
    /// The labels met so far; a code indexes them.
    pub fn names(&self) -> &[String] {
        &self.names
    }
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
    /// Orders the classes: by value when every label parses as a number, else as strings.
    pub fn finish(self) -> Classes {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        if self.fixed {
            return Classes {
                remap: order,
                names: self.names,
            };
        }
        let nums: Option<Vec<f64>> = self
            .names
            .iter()
            .map(|n| n.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
            .collect();
        match nums {
            Some(v) => order.sort_by(|&a, &b| v[a as usize].total_cmp(&v[b as usize])),
            None => order.sort_by(|&a, &b| self.names[a as usize].cmp(&self.names[b as usize])),
        }
        let mut remap = vec![0u32; order.len()];
        for (id, &code) in order.iter().enumerate() {
            remap[code as usize] = id as u32;
        }
        Classes {
            names: order
                .iter()
                .map(|&c| self.names[c as usize].clone())
                .collect(),
            remap,
        }
    }
}

impl Classes {
    /// Renumbers a reader's codes to class ids in place.
    pub fn apply(&self, codes: &mut [u32]) {
        for c in codes {
            *c = self.remap[*c as usize];
        }
    }
}
