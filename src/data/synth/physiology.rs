//! The published measurements of mouse V1 (layer 2/3, awake) that set the simulated population.
//!
//! Each value names its source. Where a study reports a range, the value is inside it and the
//! range is given; none of these was adjusted to make a derived statistic (the agreement of
//! neural and pixel similarity, oracle correlations) come out at a chosen value: those are
//! measured on the generated scans and compared with the real ones in the README.

/// Retinotopic extent of an imaging field, degrees: a 630 um field of view (Sensorium scans,
/// Willeke et al. 2022) at a cortical magnification of about 25 um per degree (Schuett et al.
/// 2002; Garrett et al. 2014: 20-30 um/deg).
pub const FIELD_DEGREES: f32 = 25.0;
/// Side of the imaging field, um (Willeke et al. 2022: 630 x 630 um fields).
pub const FIELD_UM: f32 = 630.0;
/// Depth range of layer 2/3 somata imaged, um below the pia (Willeke et al. 2022: 200-300 um
/// planes; Sensorium's `cell_motor_coordinates` depths).
pub const DEPTH_UM: (f32, f32) = (180.0, 320.0);
/// Standard deviation of receptive-field centres around the retinotopic map's prediction,
/// degrees (Bonin et al. 2011, J Neurosci 31:18506: neighbouring L2/3 neurons' centres scatter by
/// a few degrees, 3-6).
pub const RF_SCATTER_DEGREES: f32 = 4.0;

/// Median Gaussian envelope sigma of a receptive field, degrees. Its diameter (4 sigma) is 28
/// degrees, between the minimum response field (20.6 degrees) and the most exciting image (32.9
/// degrees) measured in this setup ("Functional bipartite invariance in mouse primary visual cortex
/// receptive fields", Nat Neurosci 2026, Ext. Data Fig. 10), and within
/// the 10-30 degrees of Niell and Stryker 2008 (J Neurosci 28:7520) and Van den Bergh et al. 2010
/// (J Comp Neurol 518:2051).
pub const RF_SIGMA_DEGREES: f32 = 7.0;
/// Log-normal spread (natural-log standard deviation) of the envelope sigma across neurons.
pub const RF_SIGMA_SPREAD: f32 = 0.3;
/// Log-normal spread of the envelope's aspect (width across over width along the carrier).
pub const RF_ASPECT_SPREAD: f32 = 0.25;

/// Median preferred spatial frequency, cycles per degree (Niell and Stryker 2008, Fig. 6: peak
/// near 0.04 cpd; Gao et al. 2010; Van den Bergh et al. 2010: 0.03-0.05).
pub const SF_CPD: f32 = 0.04;
/// Spread of the preferred spatial frequency across neurons, octaves (log2 standard deviation;
/// Niell and Stryker 2008: preferences from about 0.01 to 0.3 cpd).
pub const SF_SPREAD_OCTAVES: f32 = 1.0;

/// Fraction of low-pass cells: no fall-off of the response at the lowest spatial frequencies
/// tested (Niell and Stryker 2008: 20-30% of mouse V1 neurons). They are modelled as ON or OFF
/// regions (a Gaussian of the luminance contrast, either sign), untuned for orientation.
pub const LOW_PASS_FRACTION: f32 = 0.25;

/// Fraction of simple cells (linear, phase-sensitive: F1/F0 > 1 to drifting gratings), low-pass
/// cells included; the rest are complex (phase-invariant energy). Niell and Stryker 2008 and Van
/// den Bergh et al. 2010: 30-45% simple.
pub const SIMPLE_FRACTION: f32 = 0.4;

/// The fraction of the band-pass (Gabor) cells that are simple, so that with the low-pass cells
/// (all phase-sensitive) the population has [`SIMPLE_FRACTION`].
pub const BAND_PASS_SIMPLE_FRACTION: f32 =
    (SIMPLE_FRACTION - LOW_PASS_FRACTION) / (1.0 - LOW_PASS_FRACTION);

/// Median semi-saturation contrast c50 of the contrast response (Naka-Rushton; Busse et al. 2011,
/// J Neurosci 31:11351; Niell and Stryker 2008: 20-35%).
pub const C50: f32 = 0.25;
/// Log-normal spread of c50 across neurons.
pub const C50_SPREAD: f32 = 0.4;
/// Mean and standard deviation of the contrast-response exponent n (Busse et al. 2011: 1.5-3); it
/// is also the expansive spiking nonlinearity (Priebe et al. 2004, Nat Neurosci 7:1113: power-law
/// exponents 2-4) that sharpens orientation tuning beyond the linear filter's.
pub const EXPONENT: (f32, f32) = (2.0, 0.4);
/// Size of the divisive normalisation pool relative to the receptive field (Heeger 1992;
/// Carandini, Heeger and Movshon 1997: normalisation by the local contrast energy; surrounds of
/// mouse L2/3 neurons extend 1.5-2 receptive-field radii, Van den Bergh et al. 2010).
pub const POOL_SCALE: f32 = 1.5;

/// Median maximal evoked rate to an optimal full-contrast grating, spikes/s, and its log-normal
/// spread (Niell and Stryker 2008, 2010: evoked rates of a few to tens of spikes/s in awake mice).
pub const MAX_RATE_HZ: (f32, f32) = (15.0, 0.6);
/// Median spontaneous rate, spikes/s, and its log-normal spread (Niell and Stryker 2010: about
/// 1-2 spikes/s, unchanged by running).
pub const SPONTANEOUS_HZ: (f32, f32) = (1.0, 0.8);
/// Response window: each image was shown for 500 ms (Li et al. 2019, Section 2).
pub const WINDOW_S: f32 = 0.5;

/// Median gain of visual responses while running against sitting still, and its log-normal
/// spread (Niell and Stryker 2010, Neuron 65:472: most neurons more than double; Erisken et al.
/// 2014, Curr Biol 24:2899: smaller and mixed, 1.2-1.5x, some suppressed).
pub const RUNNING_GAIN: (f32, f32) = (1.6, 0.35);
/// Mean and standard deviation of the log-gain per standard deviation of pupil size (Reimer et
/// al. 2014, Neuron 84:355; Vinck et al. 2015, Neuron 86:740: arousal raises gain modestly).
pub const PUPIL_LOG_GAIN: (f32, f32) = (0.1, 0.1);

/// Standard deviation of the population-wide log-gain fluctuation from trial to trial (Goris,
/// Movshon and Simoncelli 2014, Nat Neurosci 17:858: spike counts are Poisson given a shared,
/// slowly varying multiplicative gain; Lin et al. 2015, Neuron 88:403: mostly one-dimensional).
pub const SHARED_GAIN_SPREAD: f32 = 0.25;
/// Dimensions of the unobserved brain-wide state each neuron's gain loads on (Stringer et al.
/// 2019, Science 364:eaav7893: multidimensional, unrelated to the stimulus).
pub const LATENTS: usize = 3;
/// Standard deviation of a neuron's log-gain loading on each latent dimension. With the shared
/// gain, a neuron's total log-gain variance is 0.25 (gain variance 0.28, within the 0.1-0.3 of
/// Goris et al. 2014's V1 fits).
pub const LOADING_SPREAD: f32 = 0.25;
