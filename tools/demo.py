"""`make demo`: tiny data -> pretrain (cyclic baseline and SD) -> VOC det/seg transfer -> report."""
from sd_transfer.demo import main

if __name__ == '__main__':
    main()
