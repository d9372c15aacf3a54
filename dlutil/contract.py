"""The def.py contract, written once: the text ``--help`` shows, and what each mode needs.

:mod:`dlutil.definition` checks a def.py against :data:`NEEDED`, :data:`FUNCTIONS` and
:data:`MODEL_METHODS`; :mod:`dlutil.cli` prints :data:`CONTRACT` under ``--help``. The README's
"Writing def.py" explains the same contract at length.
"""

#: what each mode needs from a def.py (get_space may stand for get_config)
NEEDED = {
    'hyper': ('Model', 'get_config', 'get_train_generator'),
    'eval': ('Model', 'get_test_generator'),
    'predict': ('Model', 'get_pred_generator'),
}
#: the flag of each mode, for messages
FLAGS = {'hyper': '-y', 'eval': '-e', 'predict': '-p'}
#: every function a def.py may define; each must be callable when present
FUNCTIONS = ('get_config', 'get_space', 'get_train_generator', 'get_val_generator',
             'get_test_generator', 'get_pred_generator', 'save_prediction')
#: what Model must implement (a base_model.BaseModel subclass; the task models supply them)
MODEL_METHODS = ('init_model', 'train_metrics', 'eval_metrics', 'get_hyperband_reward')
#: what Model.run_epoch must return: a dict with these numbers (NaN: the trial diverged)
RUN_EPOCH_KEYS = ('train_loss', 'hyperband_reward')

CONTRACT = """\
the def.py contract:
  get_config()                          -> one randomly sampled, JSON-serialisable dict  (-y)
  get_space()                           -> a hyperopt space, instead of get_config         (-y)
  get_train_generator(data_dir, batch_size)
                                        -> a batch generator, or (train, val) / [train, val]
                                                                                          (-y)
  get_val_generator(data_dir)           -> validation generator, unless the above
                                           returns (train, val)                           (-y)
  get_test_generator(data_dir)          -> test generator                                 (-e)
  get_pred_generator(pred_path)         -> generator of inputs, once per file -p matches  (-p)
  save_prediction(pred_path, Y)         optional; replaces predictions/<file>.*; a third
                                        argument out_dir gets --result/predictions        (-p)
  ALPHABET = 'ACGU'                     optional; the letters of the one-hot channels,
                                        in channel order (default: ACGT for 4)   (--interpret)
  CLASS_NAMES = ['bound', 'unbound']    optional; names of the classes           (--interpret)
  class Model(base_model.BaseModel)     init_model(self) builds network, criterion and
                                        optimizer from self.config and calls
                                        super().init_model(network, criterion, optimizer,
                                        constraints=...); train_metrics(y_true, y_pred),
                                        eval_metrics(y_true, y_pred) -> {name: scalar};
                                        get_hyperband_reward(result) -> number to maximise.
                                        ClassificationModel / RegressionModel supply the
                                        criterion, metrics and reward (-val_loss).
                                        An override of run_epoch(train, val, batch_size,
                                        progress) returns a dict with the numbers train_loss
                                        and hyperband_reward (and any train_*/val_* metrics);
                                        NaN in either marks the trial diverged.
  Batch generators are re-iterable (a new pass per epoch; a one-shot Python generator is
  refused) and yield (x, y) numpy batches: batch_generator.MatrixBatchGenerator(X, Y,
  batch_size, shuffle), H5pyBatchGenerator(glob, batch_size, shuffle) over the 'data' and
  'label' datasets of HDF5 files; SimulationBatchGenerator(simulator, input_shape,
  output_shape, batch_size, batches_per_epoch, processes) simulates them on the fly.
  def.py may read environment variables:
  VAR=value python main.py ...

results (--result):
  search.csv, best.json, report.html, trials/<id>/{config.json, history.csv, last.pt,
  best.pt (see --keep-checkpoints)}, test_result.json (-e), predictions/<input file
  name>.{npy,h5,tsv} (-p; .h5 and .tsv name the rows),
  interpret/summary.html, motifs.meme, performance.html (--interpret),
  interpret/attributions.html (--attribute), vep/<vcf name>.{h5,top.tsv,vcf.gz,vcf.gz.tbi}
  (--vep).
  --config trains one configuration (its keys those get_config()/get_space() gives) as
  trial t0000 of a search of one; `export RESULT -o DIR` writes model.pt2, model.json.
  Interrupt a search at any time (Ctrl-C, a crash, a full disk): the same command, or
  -r RESULT -y alone, continues it, and flags, -f and -d left out are taken from search.json.
  A rung evaluation's reward is the best validation reward of the trial's epochs so far:
  promotion, the best trial and the weights -e/-p load (best.pt) all use it. Failed
  evaluations (status error) run again on the next run, also after a def.py fix (finished
  ones are trained again to check the fix leaves them alike, else --keep-results or
  --restart); diverged ones are final. A larger --trials adds configurations.
"""
