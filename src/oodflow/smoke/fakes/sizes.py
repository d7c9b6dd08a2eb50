"""The sizes of the fakes: the contract with the smoke's config shrinker, which asks for at most these.

Every labelled split has the upstream number of classes with :data:`TRAIN_PER_CLASS` images per
class in training splits (``train``, ``trainval``, ``extra``) and :data:`EVAL_PER_CLASS` in the
others (``val``, ``test``); multi-label sets list each class as the first label of that many images
(each image has 1 to 3 labels); OOD-only sets hold :data:`OOD_IMAGES` images.
"""

TRAIN_PER_CLASS = 5
EVAL_PER_CLASS = 3
OOD_IMAGES = 40
TINYIMAGES_300K_IMAGES = 256
GAN_IMAGES = 64
#: Multi-label sets: images per class (as first label) in train / in val and test.
MULTILABEL_TRAIN_PER_CLASS = 4
MULTILABEL_EVAL_PER_CLASS = 3
#: Side range (inclusive) of the list-form images, in pixels.
LIST_SIDES = (40, 72)
